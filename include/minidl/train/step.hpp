// minidl/train/step.hpp - one training step: forward, loss, backward, update.
#pragma once

#include <cmath>
#include <cstdint>

#include "minidl/kernels/finite.hpp"
#include "minidl/layers/sequential.hpp"
#include "minidl/loss/cross_entropy.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

// Runs one step of minibatch training and returns the batch's mean loss and
// the logits (valid until the next forward). `step` keys the dropout masks:
// pass the optimizer's step count so a resumed run draws the same masks.
// A non-finite loss or gradient throws NonFiniteError before the parameters are touched, so
// the last good state (and checkpoint) survives a diverging run.
//
// With `share` (data-parallel training), x and labels are this process's
// samples of a global batch: every sum over the batch continues those of
// the processes before it, so the loss, the gradients and the step are the
// same bits on every process and as one process training on the whole
// batch (core/batch_reducer.hpp).
template <typename T>
T train_step(Sequential<T>& net, CrossEntropyLoss<T>& loss, Optimizer<T>& optimizer,
             const Tensor<T>& x, const std::int32_t* labels, const Tensor<T>** logits_out = nullptr,
             const BatchShare& share = {}) {
  Context ctx{Mode::Train, static_cast<std::uint64_t>(optimizer.step_count())};
  ctx.share = share;
  const Tensor<T>& logits = net.forward(x, ctx);
  const T value = loss.forward(logits, labels, share);
  if (!std::isfinite(static_cast<double>(value)))
    fail<NonFiniteError>("training diverged: the loss is ", value, " at optimizer step ",
                         optimizer.step_count() + 1);
  net.backward(loss.backward());
  for (const auto& p : optimizer.parameters()) {
    if (!p.trainable()) continue;  // frozen: its gradient is not used (nor always computed)
    const Tensor<T>& g = *p.grad;
    const std::int64_t bad =
        kernels::first_non_finite_rows(g.size(), g.rank() > 0 ? g.dim(0) : 1, g.data());
    if (bad >= 0)
      fail<NonFiniteError>("training diverged: the gradient of ", p.name, " is ",
                           p.grad->data()[bad], " at optimizer step ", optimizer.step_count() + 1);
  }
  optimizer.step();
  if (logits_out) *logits_out = &logits;
  return value;
}

}  // namespace minidl
