// minidl/optim/param_groups.hpp - the usual split: weight decay on weights, none on biases and
// norms.
#pragma once

#include <string>
#include <vector>

#include "minidl/optim/optimizer.hpp"

namespace minidl {

// True for parameters that weight decay should leave alone: biases and the
// scales and shifts of normalisation layers. They are the parameters of rank
// 1 (a vector per channel or feature), and anything whose name ends in "bias".
template <typename T>
bool is_no_decay_parameter(const Parameter<T>& p) {
  const std::string suffix = "bias";
  const bool named_bias = p.name.size() >= suffix.size() &&
                          p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return named_bias || p.value->shape().rank() <= 1;
}

// Two groups, in the order of `params` within each: the weights with
// `weight_decay`, then the biases and norm parameters with none. An empty
// group is left out. Both keep the optimizer's learning rate.
template <typename T>
std::vector<ParamGroup<T>> split_weight_decay(const std::vector<Parameter<T>>& params,
                                              double weight_decay) {
  ParamGroup<T> decay{{}, {}, weight_decay}, no_decay{{}, {}, 0.0};
  for (const auto& p : params) (is_no_decay_parameter(p) ? no_decay : decay).params.push_back(p);
  std::vector<ParamGroup<T>> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  return groups;
}

}  // namespace minidl
