// benchmarks/libtorch/torch_libraries.hpp - the BLAS, LAPACK and oneDNN libraries a LibTorch
// program has mapped, in the line benchmarks/pytorch/torch_libraries.py prints for PyTorch.
#pragma once

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

// The BLAS, LAPACK and oneDNN libraries mapped into this process, read from
// its own memory map: which ones libtorch really runs on, whatever was asked
// for. benchmarks/pytorch/compare.sh refuses a comparison on the reference BLAS.
inline std::string loaded_libraries() {
  std::map<std::string, std::set<std::string>> found{{"blas", {}}, {"lapack", {}}, {"dnnl", {}}};
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string skip, path;
    for (int i = 0; i < 5; ++i) fields >> skip;  // address, perms, offset, device, inode
    fields >> path;
    const std::string name = path.substr(path.rfind('/') + 1);
    const auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
    if (has("lapack"))
      found["lapack"].insert(path);
    else if (has("blas") || has("blis") || has("mkl_rt"))
      found["blas"].insert(path);
    else if (has("dnnl") || has("mkldnn"))
      found["dnnl"].insert(path);
  }
  std::string out = "libraries";
  for (const auto& [kind, paths] : found) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ",") + p;
    out += " " + kind + "=" + (list.empty() ? "none" : list);
  }
  return out;
}
