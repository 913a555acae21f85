// minidl/minidl.hpp - the whole library (without viz, data and io, which
// bring in zlib and stb: include those headers where you need them).
#pragma once

#include "minidl/core/error.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/dropout.hpp"
#include "minidl/layers/flatten.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/maxpool2d.hpp"
#include "minidl/layers/relu.hpp"
#include "minidl/layers/sequential.hpp"
#include "minidl/loss/cross_entropy.hpp"
#include "minidl/models/mnist_cnn.hpp"
#include "minidl/optim/adam.hpp"
#include "minidl/optim/sgd.hpp"
#include "minidl/train/early_stopping.hpp"
#include "minidl/train/metrics.hpp"
#include "minidl/train/step.hpp"

// Losses, optimizers, learning-rate schedules and gradient clipping.
#include "minidl/loss/bce_with_logits.hpp"
#include "minidl/loss/mse.hpp"
#include "minidl/loss/nll.hpp"
#include "minidl/loss/reduction.hpp"
#include "minidl/optim/adamw.hpp"
#include "minidl/optim/clip_grad.hpp"
#include "minidl/optim/lr_schedule.hpp"
#include "minidl/optim/lr_scheduler.hpp"
#include "minidl/optim/param_groups.hpp"
#include "minidl/optim/rmsprop.hpp"
