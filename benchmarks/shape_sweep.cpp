// The shape sweep: every square convolution kernel of minidl (direct, rows, im2col) in each
// pass (forward, backward-data, backward-weights) over a grid of shapes (shape_sweep_cases.hpp),
// and pool, batch-norm and linear layers beside them: how fast each kernel is, whether the one
// conv2d_kernels_for chooses is the fastest, and how far from this machine's peak. The
// measuring instrument for choosing kernels by shape; benchmarks/pytorch/compare_shape_sweep.sh
// sets it beside PyTorch (oneDNN).
//
// A plain main with its own timing loop, not Google Benchmark: the sweep needs one table over
// all kernels of a case (to mark the fastest), a summary over the whole grid, and a --list of
// the cases that the PyTorch twin reads, none of which Google Benchmark's per-benchmark
// reporting gives.
//
//   shape_sweep [--quick | --full] [--filter REGEX] [--threads N] [--reps N]
//               [--max-gmacs X] [--list] [--check] [--help]
//
// Before a kernel is timed it is checked against the naive loops (conv2d_naive.hpp) at batch
// min(N, 2), outputs and scratch filled with NaN first; a mismatch names the case and exits 1.
// Each timing is the median of --reps repetitions after one warm-up call; a repetition runs the
// pass enough times to last about a millisecond and counts the time per call.
//
// Output, once every case is timed (a terminal on stderr counts the cases meanwhile): '#' lines
// (threads, the peak: the higher of a reading before the sweep and one after), a header, then one
// tab-separated line per (case, pass, kernel): case, pass, kernel, ms, rate, unit (GFLOP/s or
// GB/s), % of peak (GFLOP/s only), chosen (the kernel conv2d_kernels_for picks), fastest (the least
// time for the case and pass), floor_ms (the pass's memory floor: reading its operands and writing
// its result once, timed on the same buffers) and pct_bound (the time the pass cannot beat, the
// larger of its FLOPs at the peak and its floor, in % of its time; convolutions only). Layers have
// one pass, forward_backward, and one kernel, layer. Then '## ' summary lines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/kernels/simd.hpp"
#include "peak_fma.hpp"
#include "shape_sweep_cases.hpp"
#include "shape_sweep_layers.hpp"

using namespace minidl;
using namespace minidl::kernels;
using namespace minidl::sweep;
using Clock = std::chrono::steady_clock;

namespace {

volatile float g_sink;  // keeps the peak loop's result, so that its work stays

const char* const kUsage =
    "usage: shape_sweep [--quick | --full] [--filter REGEX] [--threads N] [--reps N]\n"
    "                   [--max-gmacs X] [--list] [--check] [--help]\n"
    "  --quick        a handful of small cases (a check that everything runs)\n"
    "  --full         every kernel, stride, channel pair, size and batch\n"
    "  --filter REGEX only the cases whose name REGEX matches (anywhere in it)\n"
    "  --threads N    threads (2)\n"
    "  --reps N       timed repetitions per measurement, after one warm-up (5)\n"
    "  --max-gmacs X  leave out convolutions of more than X billion multiply-adds a pass (4)\n"
    "  --list         print the case names, one a line, and exit\n"
    "  --check        check every kernel against the naive loops, time nothing, and exit\n";

struct Flags {
  Grid grid = Grid::Default;
  std::string filter;
  int threads = 2, reps = 5;
  double max_gmacs = 4;
  bool list = false, check = false;
};

long whole_number(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || n < 1 || n > 1024)
    throw std::invalid_argument(flag + " takes a whole number from 1 to 1024, not '" + text + "'");
  return n;
}

// Returns false after printing the usage for --help.
bool parse_flags(int argc, char** argv, Flags& f) {
  bool quick = false, full = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return false;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--full") {
      full = true;
    } else if (a == "--list") {
      f.list = true;
    } else if (a == "--check") {
      f.check = true;
    } else if (a == "--filter") {
      f.filter = value();
    } else if (a == "--threads") {
      f.threads = static_cast<int>(whole_number(a, value()));
    } else if (a == "--reps") {
      f.reps = static_cast<int>(whole_number(a, value()));
    } else if (a == "--max-gmacs") {
      const char* text = value();
      char* end = nullptr;
      f.max_gmacs = std::strtod(text, &end);
      if (*text == '\0' || *end != '\0' || !(f.max_gmacs > 0))
        throw std::invalid_argument(std::string("--max-gmacs takes a positive number, not '") +
                                    text + "'");
    } else {
      throw std::invalid_argument("unknown argument '" + a + "' (see --help)");
    }
  }
  if (quick && full) throw std::invalid_argument("--quick and --full exclude each other");
  f.grid = quick ? Grid::Quick : full ? Grid::Full : Grid::Default;
  return true;
}

// Milliseconds per call of `run`: the median of `reps` repetitions after one warm-up call. A
// repetition calls it as often as the warm-up says fills about a millisecond, so that short
// passes are not lost in the clock's resolution.
double median_ms(const std::function<void()>& run, int reps) {
  auto t = Clock::now();
  run();
  const double once = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  const int calls = static_cast<int>(std::clamp(1.0 / std::max(once, 1e-6), 1.0, 1000.0));
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    t = Clock::now();
    for (int c = 0; c < calls; ++c) run();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count() / calls);
  }
  std::sort(ms.begin(), ms.end());
  return reps % 2 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
}

// The peak FP32 rate (GFLOP/s) on `threads` threads: the best of rounds of about 2 ms over a
// quarter of a second. On a shared machine a round can only read low, never high.
double measure_peak_gflops(int threads) {
  const std::int64_t iters = 1 << 20;
  double best = 0;
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < 0.25) {
    const auto t = Clock::now();
    g_sink = bench::run_peak_fma(threads, iters);
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    best = std::max(best, bench::peak_fma_flops(threads, iters) / s * 1e-9);
  }
  return best;
}

// ---- convolutions --------------------------------------------------------------

const ConvPass kPasses[] = {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeights};
const ConvKernel kSquareKernels[] = {ConvKernel::Direct,    ConvKernel::Rows,
                                     ConvKernel::Im2col,    ConvKernel::Winograd,
                                     ConvKernel::Winograd4, ConvKernel::Pointwise};

const char* pass_name(ConvPass p) {
  return p == ConvPass::Forward        ? "forward"
         : p == ConvPass::BackwardData ? "backward_data"
                                       : "backward_weights";
}

// The tensors of every pass of one shape: inputs random in [-1, 1], outputs and scratch `fill`.
struct ConvBuffers {
  Conv2dShape s;
  std::vector<float> x, w, b, dy, y, dx, dw, db, workspace, partials;
  ConvBuffers(const Conv2dShape& shape, float fill) : s(shape) {
    x = bench::random_values(s.N * s.C * s.H * s.W, 1);
    w = bench::random_values(s.OC * s.col_rows(), 2);
    b = bench::random_values(s.OC, 3);
    dy = bench::random_values(s.N * s.OC * s.col_cols(), 4);
    y.assign(dy.size(), fill);
    dx.assign(x.size(), fill);
    dw.assign(w.size(), fill);
    db.assign(b.size(), fill);
    workspace.assign(static_cast<std::size_t>(conv2d_workspace_size<float>(s)), fill);
    partials.assign(static_cast<std::size_t>(conv2d_weight_partials_size<float>(s)), fill);
  }
};

void run_pass(ConvKernel k, ConvPass p, ConvBuffers& d) {
  if (p == ConvPass::Forward)
    conv2d_forward_with(k, d.s, d.x.data(), d.w.data(), d.b.data(), d.y.data(), d.workspace.data());
  else if (p == ConvPass::BackwardData)
    conv2d_backward_data_with(k, d.s, d.dy.data(), d.w.data(), d.dx.data(), d.workspace.data());
  else
    conv2d_backward_weights_with(k, d.s, d.x.data(), d.dy.data(), d.dw.data(), d.db.data(),
                                 d.partials.data());
}

// Largest difference from the naive result, NaN (an element never written) as infinity.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    m = std::max(m, d);
  }
  return m;
}

// Both sides sum the same products in other orders: the difference is bounded by the depth of
// the sum times float's precision (tests/test_kernels.cpp's bound; inputs are in [-1, 1]).
double tolerance(std::int64_t depth) {
  return 2e-6 * static_cast<double>(std::max<std::int64_t>(depth, 16));
}

// The naive loops' result of each pass of one shape at batch min(N, 2), computed once (they
// are the slow part of a sweep), and the check of a kernel against it.
class ConvCheck {
 public:
  explicit ConvCheck(const Conv2dShape& s) : s_(small_batch(s)), ref_(s_, 0.0f) {}

  // "" when kernel k's pass p agrees with the naive loops, else by how much it differs.
  std::string check(ConvKernel k, ConvPass p) {
    ConvBuffers fast(s_, std::numeric_limits<float>::quiet_NaN());
    run_pass(k, p, fast);
    run_naive(p);
    double diff = 0, tol = 0;
    if (p == ConvPass::Forward) {
      diff = max_abs_diff(fast.y, ref_.y);
      tol = tolerance(s_.col_rows());
    } else if (p == ConvPass::BackwardData) {
      diff = max_abs_diff(fast.dx, ref_.dx);
      tol = tolerance(s_.OC * s_.KH * s_.KW);
    } else {
      diff = std::max(max_abs_diff(fast.dw, ref_.dw), max_abs_diff(fast.db, ref_.db));
      tol = tolerance(s_.N * s_.col_cols());
    }
    if (diff <= tol) return "";
    return "differs from the naive loops by " + std::to_string(diff) + " (tolerance " +
           std::to_string(tol) + ") at batch " + std::to_string(s_.N);
  }

 private:
  static Conv2dShape small_batch(Conv2dShape s) {
    s.N = std::min<std::int64_t>(s.N, 2);
    return s;
  }

  void run_naive(ConvPass p) {
    bool& done = done_[static_cast<int>(p)];
    if (done) return;
    done = true;
    if (p == ConvPass::Forward)
      conv2d_forward_naive(s_, ref_.x.data(), ref_.w.data(), ref_.b.data(), ref_.y.data());
    else if (p == ConvPass::BackwardData)
      conv2d_backward_data_naive(s_, ref_.dy.data(), ref_.w.data(), ref_.dx.data());
    else
      conv2d_backward_weights_naive(s_, ref_.x.data(), ref_.dy.data(), ref_.dw.data(),
                                    ref_.db.data());
  }

  Conv2dShape s_;
  ConvBuffers ref_;  // the same random inputs as every kernel's (the same seeds)
  bool done_[3] = {false, false, false};
};

// ---- memory floor ------------------------------------------------------------------

// Elements [begin, end) of share t of n elements cut into `shares`, whole vectors but the last.
std::pair<std::int64_t, std::int64_t> share_of(std::int64_t n, int t, int shares) {
  const std::int64_t W = Simd<float>::width, vectors = (n + W - 1) / W;
  const std::int64_t begin = vectors * t / shares * W, end = vectors * (t + 1) / shares * W;
  return {std::min(begin, n), std::min(end, n)};
}

// Reads every element of `inputs` and writes every element of `output` once, each thread its
// own share of each, in whole vectors: the memory traffic no kernel of a pass with these
// operands can avoid, at the rate plain streaming gets from these very buffers (the kernels'
// own, so the same footprint and caches). The value written comes from the sums read, so
// neither half can be left out.
void stream_operands(const std::vector<const std::vector<float>*>& inputs,
                     std::vector<float>& output) {
  using S = Simd<float>;
  using V = S::vec;
  constexpr int W = S::width;
  const int threads = num_threads();
  parallel_blocks(threads, threads, [&](int, std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      V sum{};
      for (const std::vector<float>* in : inputs) {
        const auto [begin, end] =
            share_of(static_cast<std::int64_t>(in->size()), static_cast<int>(t), threads);
        std::int64_t i = begin;
        for (; i + W <= end; i += W) sum += S::load(in->data() + i);
        for (; i < end; ++i) sum[0] += (*in)[static_cast<std::size_t>(i)];
      }
      const V value = sum * 0.0f + 1.0f;  // 1, unless a read was not finite
      const auto [begin, end] =
          share_of(static_cast<std::int64_t>(output.size()), static_cast<int>(t), threads);
      std::int64_t i = begin;
      for (; i + W <= end; i += W) S::store(output.data() + i, value);
      for (; i < end; ++i) output[static_cast<std::size_t>(i)] = value[0];
    }
  });
}

// Milliseconds of pass p's memory floor on buffers d: forward reads x, w and b and writes y;
// backward-data reads dy and w and writes dx; backward-weights reads x and dy and writes dw
// (db is a few values).
double memory_floor_ms(ConvPass p, ConvBuffers& d, int reps) {
  if (p == ConvPass::Forward)
    return median_ms([&] { stream_operands({&d.x, &d.w, &d.b}, d.y); }, reps);
  if (p == ConvPass::BackwardData)
    return median_ms([&] { stream_operands({&d.dy, &d.w}, d.dx); }, reps);
  return median_ms([&] { stream_operands({&d.x, &d.dy}, d.dw); }, reps);
}

// ---- results -----------------------------------------------------------------------

struct Row {
  std::string name, pass, kernel;
  double ms = 0, rate = 0;
  double floor_ms = 0;  // the pass's memory floor (convolutions only)
  bool is_flops = true, chosen = false, fastest = false;
  Conv2dShape shape{};  // convolutions only
  bool is_conv = false;
};

// The least time pass r can take: its FLOPs at the peak, or its memory floor if that is longer.
double bound_ms(const Row& r, double peak) {
  return std::max(r.rate * r.ms / peak, r.floor_ms);
}

void print_row(const Row& r, double peak) {
  char pct[32] = "-", floor[32] = "-", bound[32] = "-";
  if (r.is_flops) std::snprintf(pct, sizeof pct, "%.1f", 100 * r.rate / peak);
  if (r.is_conv) {
    std::snprintf(floor, sizeof floor, "%.6g", r.floor_ms);
    std::snprintf(bound, sizeof bound, "%.1f", 100 * bound_ms(r, peak) / r.ms);
  }
  std::printf("%s\t%s\t%s\t%.6g\t%.6g\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name.c_str(), r.pass.c_str(),
              r.kernel.c_str(), r.ms, r.rate, r.is_flops ? "GFLOP/s" : "GB/s", pct,
              r.chosen ? "yes" : "no", r.fastest ? "yes" : "no", floor, bound);
  std::fflush(stdout);
}

// Checks kernel k's pass p on case c against the naive loops; exits 1 naming them on a mismatch.
void require_conv_agrees(const SweepCase& c, ConvCheck& naive, ConvKernel k, ConvPass p) {
  const std::string error = naive.check(k, p);
  if (error.empty()) return;
  std::fprintf(stderr, "shape_sweep: error: %s %s %s: %s\n", c.name.c_str(), pass_name(p),
               conv_kernel_name(k), error.c_str());
  std::exit(1);
}

void require_layer_agrees(const SweepCase& c, sweep::LayerRun& run) {
  const std::string error = sweep::check_layer(c.layer, run);
  if (error.empty()) return;
  std::fprintf(stderr, "shape_sweep: error: %s: %s\n", c.name.c_str(), error.c_str());
  std::exit(1);
}

// Checks every kernel of every pass of case c (or its layer); returns how many it checked.
int check_case(const SweepCase& c) {
  if (!c.is_conv) {
    sweep::LayerRun run = sweep::make_layer_run(c.layer);
    require_layer_agrees(c, run);
    return 1;
  }
  int checked = 0;
  ConvCheck naive(c.conv);
  for (ConvPass p : kPasses)
    for (ConvKernel k : kSquareKernels)
      if (conv_kernel_applies<float>(k, p, c.conv)) {
        require_conv_agrees(c, naive, k, p);
        ++checked;
      }
  return checked;
}

// Times every kernel of every pass of one convolution case, each once checked; exits on a
// mismatch.
std::vector<Row> sweep_conv(const SweepCase& c, int reps) {
  const Conv2dKernels chosen = conv2d_kernels_for<float>(Conv2dGeometry(c.conv));
  ConvBuffers d(c.conv, 0.0f);
  ConvCheck naive(c.conv);
  const double flops = 2 * conv_macs(c.conv);
  std::vector<Row> rows;
  for (ConvPass p : kPasses) {
    const ConvKernel pick = p == ConvPass::Forward        ? chosen.forward
                            : p == ConvPass::BackwardData ? chosen.backward_data
                                                          : chosen.backward_weights;
    const std::size_t first = rows.size();
    const double floor_ms = memory_floor_ms(p, d, reps);
    for (ConvKernel k : kSquareKernels) {
      if (!conv_kernel_applies<float>(k, p, c.conv)) continue;
      require_conv_agrees(c, naive, k, p);
      Row r{c.name, pass_name(p), conv_kernel_name(k)};
      r.ms = median_ms([&] { run_pass(k, p, d); }, reps);
      r.rate = flops / r.ms * 1e-6;
      r.floor_ms = floor_ms;
      r.chosen = k == pick;
      r.shape = c.conv;
      r.is_conv = true;
      rows.push_back(r);
    }
    auto best = std::min_element(rows.begin() + static_cast<std::ptrdiff_t>(first), rows.end(),
                                 [](const Row& a, const Row& b) { return a.ms < b.ms; });
    if (best != rows.end()) best->fastest = true;
    if (!conv_kernel_applies<float>(pick, p, c.conv)) {  // the chooser must pick a timed kernel
      std::fprintf(stderr, "shape_sweep: error: %s %s: the chosen kernel %s does not apply\n",
                   c.name.c_str(), pass_name(p), conv_kernel_name(pick));
      std::exit(1);
    }
  }
  return rows;
}

Row sweep_layer(const SweepCase& c, int reps) {
  sweep::LayerRun run = sweep::make_layer_run(c.layer);
  require_layer_agrees(c, run);
  Row r{c.name, "forward_backward", "layer"};
  const double work = sweep::layer_work(c.layer, run, r.is_flops);
  r.ms = median_ms([&] { run.forward_backward(); }, reps);
  r.rate = work / r.ms * 1e-6;
  r.chosen = r.fastest = true;
  return r;
}

// ---- summary ---------------------------------------------------------------------------

// The speed target of a convolution in % of peak, and the name of its class; 0 when none
// applies. Targets: 3x3 with >= 16 channels in and out 70%, stride 2 and 1x1 60%, 5x5 and small
// channels (fewer than 16 in or out) 40%. Where classes overlap the more lenient one counts:
// small channels and 5x5 before stride 2 and 1x1, those before 3x3. 7x7 on 16 or more
// channels has no target.
double target_pct(const Conv2dShape& s, std::string& what) {
  if (s.C < 16 || s.OC < 16 || s.KH == 5) {
    what = "5x5 and small-channel >= 40%";
    return 40;
  }
  if (s.stride == 2 || s.KH == 1) {
    what = "stride 2 and 1x1 >= 60%";
    return 60;
  }
  if (s.KH == 3) {
    what = "3x3 with >= 16 channels >= 70%";
    return 70;
  }
  return 0;
}

// The rows of one convolution's pass: its chosen and its fastest kernel, and how many it timed.
struct PassRows {
  const Row* chosen = nullptr;
  const Row* fastest = nullptr;
  std::size_t kernels = 0;
};

// The convolutions' (case, pass) pairs, in the order of the rows (which keep a pair together).
std::vector<PassRows> conv_passes(const std::vector<Row>& rows) {
  std::vector<PassRows> passes;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].is_conv) continue;
    if (i == 0 || rows[i].name != rows[i - 1].name || rows[i].pass != rows[i - 1].pass)
      passes.emplace_back();
    PassRows& p = passes.back();
    ++p.kernels;
    if (rows[i].chosen) p.chosen = &rows[i];
    if (rows[i].fastest) p.fastest = &rows[i];
  }
  return passes;
}

// How often the chosen kernel is the fastest, and the ten worst losses when it is not.
void print_choices(const std::vector<PassRows>& passes) {
  int chosen_fastest = 0, with_choice = 0;
  std::vector<const PassRows*> losses;
  for (const PassRows& p : passes) {
    with_choice += p.kernels > 1;
    if (p.chosen == p.fastest)
      ++chosen_fastest;
    else
      losses.push_back(&p);
  }
  auto ratio = [](const PassRows* p) { return p->chosen->ms / p->fastest->ms; };
  std::sort(losses.begin(), losses.end(),
            [&](const PassRows* a, const PassRows* b) { return ratio(a) > ratio(b); });
  std::printf(
      "## chosen kernel fastest: %d of %zu (case, pass) pairs (%d with more than one kernel)\n",
      chosen_fastest, passes.size(), with_choice);
  std::printf("## worst losses of the chosen kernel (chosen / fastest time): %zu in all\n",
              losses.size());
  for (std::size_t i = 0; i < losses.size() && i < 10; ++i) {
    const Row& c = *losses[i]->chosen;
    const Row& f = *losses[i]->fastest;
    std::printf("## loss %.2fx %s %s: %s %.6g ms, %s %.6g ms\n", ratio(losses[i]), c.name.c_str(),
                c.pass.c_str(), c.kernel.c_str(), c.ms, f.kernel.c_str(), f.ms);
  }
}

// The chosen kernels against the speed targets: per class how many pairs fall below and how
// many of those their memory floor keeps below (moving their operands once at the streaming
// rate takes longer than the target allows), then each pair below, with the % of peak its
// floor allows and the % of its bound (bound_ms) it reaches.
void print_targets(const std::vector<PassRows>& passes, double peak) {
  struct Target {
    std::string what;
    int pairs = 0, below = 0, floor_bound = 0;
  };
  std::vector<Target> targets;
  std::vector<std::string> below;
  for (const PassRows& p : passes) {
    const Row& r = *p.chosen;
    std::string what;
    const double target = target_pct(r.shape, what);
    if (target == 0) continue;
    auto t = std::find_if(targets.begin(), targets.end(),
                          [&](const Target& x) { return x.what == what; });
    if (t == targets.end()) t = targets.insert(targets.end(), Target{what});
    ++t->pairs;
    const double pct = 100 * r.rate / peak;
    if (pct >= target) continue;
    ++t->below;
    const double floor_allows = 100 * r.rate * r.ms / r.floor_ms / peak;
    t->floor_bound += floor_allows < target;
    char line[320];
    std::snprintf(line, sizeof line,
                  "## below %s %s: %s %.1f%% of peak (target %.0f%%); memory floor allows %.0f%%, "
                  "%.0f%% of the bound reached",
                  r.name.c_str(), r.pass.c_str(), r.kernel.c_str(), pct, target, floor_allows,
                  100 * bound_ms(r, peak) / r.ms);
    below.push_back(line);
  }
  for (const Target& t : targets)
    std::printf(
        "## target %s: %d of %d (case, pass) pairs below, %d of them held there by their memory "
        "floor\n",
        t.what.c_str(), t.below, t.pairs, t.floor_bound);
  for (const std::string& line : below) std::printf("%s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Flags flags;
    if (!parse_flags(argc, argv, flags)) return 0;
    std::regex filter;
    try {
      filter = std::regex(flags.filter);
    } catch (const std::regex_error&) {
      throw std::invalid_argument("--filter '" + flags.filter + "' is not a regular expression");
    }
    std::vector<sweep::SweepCase> cases;
    for (auto& c : sweep::sweep_cases(flags.grid, flags.max_gmacs))
      if (std::regex_search(c.name, filter)) cases.push_back(std::move(c));
    if (cases.empty())
      throw std::invalid_argument("no case matches --filter '" + flags.filter + "'");
    if (flags.list) {
      for (const auto& c : cases) std::printf("%s\n", c.name.c_str());
      return 0;
    }
    set_num_threads(flags.threads);
    if (flags.check) {
      int checked = 0;
      for (const auto& c : cases) checked += check_case(c);
      std::printf("# checked %d kernels and layers in %zu cases: all agree with the naive loops\n",
                  checked, cases.size());
      return 0;
    }
    // The peak is read before and after the sweep and the higher reading taken: a host that
    // keeps one of the threads off its CPU for the whole reading halves it, and every
    // percentage would be doubled. The table is printed once both are known.
    const double peak_before = measure_peak_gflops(flags.threads);
    std::vector<Row> rows;
    const bool progress = isatty(fileno(stderr));
    std::size_t done = 0;
    for (const auto& c : cases) {
      if (progress) std::fprintf(stderr, "\rshape_sweep: case %zu of %zu", ++done, cases.size());
      if (c.is_conv) {
        for (const Row& r : sweep_conv(c, flags.reps)) rows.push_back(r);
      } else {
        rows.push_back(sweep_layer(c, flags.reps));
      }
    }
    if (progress) std::fprintf(stderr, "\n");
    const double peak_after = measure_peak_gflops(flags.threads);
    const double peak = std::max(peak_before, peak_after);
    std::printf("# shape_sweep: %zu cases, threads %d, median of %d after one warm-up\n",
                cases.size(), flags.threads, flags.reps);
    std::printf(
        "# peak %.1f GFLOP/s on %d threads (FMA chains, the higher of %.1f before the sweep and "
        "%.1f after)\n",
        peak, flags.threads, peak_before, peak_after);
    std::printf(
        "case\tpass\tkernel\tms\trate\tunit\tpct_peak\tchosen\tfastest\tfloor_ms\tpct_bound\n");
    for (const Row& r : rows) print_row(r, peak);
    const std::vector<PassRows> passes = conv_passes(rows);
    print_choices(passes);
    print_targets(passes, peak);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shape_sweep: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
