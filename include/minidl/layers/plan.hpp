// minidl/layers/plan.hpp - the plan pass: fusions, shared buffers and kernels, decided once.
//
// A network (layers/graph.hpp) is a list of nodes, each a Layer with one
// input or a Merge with several, in an order where every input comes first.
// Before the first forward pass with an input shape, plan() reads the whole
// network once and writes down every decision that is not a layer's own
// math. The result is a value, Plan, that the executor follows and
// summary() prints:
//
//   1. shapes and consumers of every value;
//   2. which layers compute an input gradient (not those reading only the
//      network's input, unless asked);
//   3. the kernel of each convolution pass (direct, rows, im2col for one
//      group, no dilation, square kernel and stride; depthwise or general
//      otherwise);
//   4. ReLU -> MaxPool2d: the pool does the ReLU's backward in its own;
//   5. Conv2d -> in-place ReLU (whose backward the pool does): the
//      convolution applies max(y, 0) as it stores y, and the ReLU makes no
//      pass at all; any other in-place ReLU after a Conv2d, a batch norm or
//      an Add read by nothing else: that node stores max(y, 0), and the
//      ReLU's backward reads the stored value instead of keeping a mask
//      (after a convolution or an addition; when the value is read twice
//      or more, the last addition of its gradients does it as it stores the
//      sum) or is done inside the batch norm's backward;
//   6. Conv2d -> [that ReLU] -> MaxPool2d 2x2 (stride 2, no padding,
//      dilation or ceil mode: MaxPool2d::is_2x2): the convolution hands its
//      output to the pool a few planes at a time, and it is never stored;
//   7. the same chain backward, when the convolution needs no input gradient
//      and its weight kernel reads dy by planes: the pool makes its input
//      gradient a plane at a time for the convolution;
//   8. which layers may write their input gradient over their input
//      (MaxPool2d, when nothing reads that input after its backward), and
//      which additions their sum over an input (when nothing reads that
//      input after the addition's forward); when that input is a batch
//      norm's output made after the other input, the batch norm stores the
//      sum (and the ReLU after it) in its own pass, and the addition makes
//      none;
//   9. whether every in-place ReLU and LeakyReLU is safe where it stands
//      (else an error);
//  10. Conv2d -> BatchNorm2d: in evaluation, the convolution runs with the
//      batch norm folded into its weights and bias, and the batch norm makes
//      no pass;
//  11. Add: every input's gradient is dy itself, not a copy, when nothing
//      that receives it writes over it;
//  12. which gradients share buffers: the input gradients layers make and
//      the sums for values read twice or more, when they are never needed
//      at the same time in backward;
//  13. which batch norms doing a ReLU keep no output: their output goes
//      into one buffer they all share, read by the convolution right after
//      them, and is remade from the kept input in backward, just before the
//      convolution's backward reads it (the same arithmetic, the same bits);
//  14. the activation memory each node holds (outputs, gradients, masks
//      and winners; not parameters or the kernels' scratch).
//
// Fusions only join a value to its single consumer. Every fusion and
// sharing gives the same bits as the plain passes, except the folding of
// step 10, which rounds differently (to float rounding); PlanOptions turns
// each kind off.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/layers/add.hpp"
#include "minidl/layers/batchnorm.hpp"
#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/dropout.hpp"
#include "minidl/layers/layer.hpp"
#include "minidl/layers/leaky_relu.hpp"
#include "minidl/layers/maxpool2d.hpp"
#include "minidl/layers/merge.hpp"
#include "minidl/layers/relu.hpp"

namespace minidl {

// The value a node reads when it names no other: the network's input.
inline constexpr int kNetworkInput = -1;

// One node of a network: a layer (one input) or a merge (several).
template <typename T>
struct Node {
  std::string name;
  std::unique_ptr<Layer<T>> layer;
  std::unique_ptr<Merge<T>> merge;
  std::vector<int> inputs;  // node indices, or kNetworkInput
  std::string type() const { return layer ? layer->type() : merge->type(); }
};

struct PlanOptions {
  bool fold_relu = true;       // steps 4 and 5
  bool pass_planes = true;     // steps 6 and 7
  bool share_buffers = true;   // steps 8, 11 and 12
  bool fold_batchnorm = true;  // step 10
  bool remake_outputs = true;  // step 13: less memory for one more pass in backward
};

// Where a value goes: node `node` reads it as its input number `slot`.
struct Use {
  int node, slot;
};

// The decisions for one node. Fields that do not apply to its type stay off.
struct NodePlan {
  Shape output;
  std::vector<Use> uses;  // consumers in node order: the order gradients are summed in
  bool needs_input_grad = true;
  // Conv2d
  bool is_conv = false;
  ConvKernels kernels{};
  bool relu_in_store = false;    // stores max(y, 0) for the in-place ReLU after it (5); also Add
  int planes_to = -1;            // hands its output to this MaxPool2d node by planes (6)
  int grad_planes_from = -1;     // reads dy by planes from this MaxPool2d node (7)
  int remakes_input_of = -1;     // before its backward, remakes this batch norm's output (13)
  bool remakes_in_copy = false;  // ... inside its weight gradient's copy of each sample (13)
  int batchnorm_folded = -1;     // in evaluation, applies this BatchNorm2d node too (10)
  // MaxPool2d
  bool relu_in_backward = false;  // does the backward of the ReLU before it (4)
  bool fed_planes = false;        // its input comes from the convolution by planes (6)
  bool defer_input_grad = false;  // its input gradient is made by planes (7)
  bool overwrite_input = false;   // its input gradient goes over its input (8)
  // ReLU
  bool skip_forward = false;   // applied by the layer before it: the value is its input (5)
  bool skip_backward = false;  // applied by the pool after it or the batch norm before: dy passes
                               // through (4, 5)
  bool backward_from_output = false;  // its backward reads the stored value, keeps no mask (5)
  bool backward_in_sum = false;  // ... done by the sum of its value's gradients, in one pass (5)
  // Add
  bool passes_gradient = false;  // every input's gradient is dy itself (11)
  int sum_over_input = -1;       // writes its sum over this input, 0 or 1 (8)
  int sum_made_by = -1;          // ... or that input's batch norm stores the sum (8)
  // A layer making its input gradient in memory of its own
  int grad_buffer = -1;  // writes it into this shared buffer of Plan::grad_buffers (12)
  // A value read by several nodes: its gradient, the sum of theirs, goes
  // into this shared buffer (12)
  int sum_buffer = -1;
  // BatchNorm2d, BatchNorm1d
  bool folded_in_eval = false;  // in evaluation, applied by the convolution before it (10)
  bool relu_after = false;      // stores max(y, 0) and does the backward of the ReLU after it (5)
  bool output_remade = false;   // its output is in Plan::remade_buffer, remade in backward (13)
  int output_made_by = -1;      // ... not even written in forward: this Conv2d node makes it (13)
  int adds_for = -1;            // stores this Add's sum (and its ReLU) as its output (8)
  // Bytes of buffers the node holds: its output, its input gradient, and
  // what backward keeps (masks, winners). Shared or skipped ones count 0
  // (a shared input-gradient buffer counts once, in Plan::grad_buffers).
  std::int64_t output_bytes = 0, grad_bytes = 0, cache_bytes = 0;
};

struct Plan {
  Shape input;
  PlanOptions options;
  bool input_grad = false;
  std::vector<NodePlan> nodes;
  std::vector<Use> input_uses;
  std::vector<Shape> grad_buffers;   // each shared gradient buffer: its largest gradient (12)
  int input_sum_buffer = -1;         // the network input's gradient when several nodes read it (12)
  std::int64_t input_sum_bytes = 0;  // that sum's own memory, when it is not shared (14)
  Shape remade_buffer;  // the largest output the batch norms of step 13 share (none: numel 0)

  // Per node: type, output shape, kernels, what was fused, and the
  // activation memory it holds; then the network's total. Parameters, their
  // gradients, optimizer state and the kernels' per-thread scratch are not
  // counted.
  template <typename T>
  std::string summary(const std::vector<Node<T>>& graph) const;
};

namespace detail {

template <typename L, typename T>
L* as(const Node<T>& n) {
  return n.layer ? dynamic_cast<L*>(n.layer.get()) : nullptr;
}

// The single consumer of node i's value, or -1.
inline int only_use(const Plan& plan, int i) {
  const auto& uses = plan.nodes[static_cast<std::size_t>(i)].uses;
  return uses.size() == 1 ? uses[0].node : -1;
}

}  // namespace detail

template <typename T>
Plan plan(const std::vector<Node<T>>& graph, const Shape& input, PlanOptions options,
          bool input_grad) {
  using detail::as;
  using detail::only_use;
  if (graph.empty()) fail("network: no layers");
  Plan plan;
  plan.input = input;
  plan.options = options;
  plan.input_grad = input_grad;
  plan.nodes.resize(graph.size());
  const int count = static_cast<int>(graph.size());
  auto node = [&](int i) -> NodePlan& { return plan.nodes[static_cast<std::size_t>(i)]; };
  auto shape_of = [&](int v) { return v == kNetworkInput ? input : node(v).output; };
  auto input_of = [&](int i) { return graph[static_cast<std::size_t>(i)].inputs[0]; };

  // 1. Shapes and uses. A value nothing reads (except the output) is a mistake.
  for (int i = 0; i < count; ++i) {
    const Node<T>& n = graph[static_cast<std::size_t>(i)];
    for (std::size_t s = 0; s < n.inputs.size(); ++s) {
      const Use use{i, static_cast<int>(s)};
      if (n.inputs[s] == kNetworkInput)
        plan.input_uses.push_back(use);
      else
        node(n.inputs[s]).uses.push_back(use);
    }
    if (n.layer) {
      node(i).output = n.layer->output_shape(shape_of(n.inputs[0]));
    } else {
      std::vector<Shape> shapes;
      for (int v : n.inputs) shapes.push_back(shape_of(v));
      node(i).output = n.merge->output_shape(shapes);
    }
  }
  for (int i = 0; i + 1 < count; ++i)
    if (node(i).uses.empty())
      fail("network: nothing reads the output of '", graph[static_cast<std::size_t>(i)].name,
           "', and it is not the last node");

  // 2. Input gradients: not for layers that read only the network's input.
  for (int i = 0; i < count; ++i) {
    bool only_network_input = true;
    for (int v : graph[static_cast<std::size_t>(i)].inputs)
      only_network_input = only_network_input && v == kNetworkInput;
    node(i).needs_input_grad = input_grad || !only_network_input;
  }

  // 3. Convolution kernels, from each convolution's input shape
  // (kernels::conv2d_kernels_for). Only direct, rows and Winograd pass planes (6), and
  // only rows reads dy by planes (7).
  for (int i = 0; i < count; ++i)
    if (const auto* conv = as<Conv2d<T>>(graph[static_cast<std::size_t>(i)])) {
      node(i).is_conv = true;
      node(i).kernels = conv->kernels_for(shape_of(input_of(i)));
    }

  // 4. A ReLU read only by a MaxPool2d: the pool does the ReLU's backward.
  for (int i = 0; options.fold_relu && i < count; ++i) {
    if (!as<MaxPool2d<T>>(graph[static_cast<std::size_t>(i)])) continue;
    const int r = input_of(i);
    if (r == kNetworkInput || !as<ReLU<T>>(graph[static_cast<std::size_t>(r)]) ||
        only_use(plan, r) != i)
      continue;
    node(i).relu_in_backward = true;
    node(r).skip_backward = true;
  }

  // 5. Such a ReLU, in place, read from a Conv2d read by nothing else: the
  // convolution applies it as it stores its output (no mask is needed, as
  // the pool does the backward).
  for (int r = 0; options.fold_relu && r < count; ++r) {
    const auto* relu = as<ReLU<T>>(graph[static_cast<std::size_t>(r)]);
    if (!relu || !relu->inplace() || !node(r).skip_backward) continue;
    const int c = input_of(r);
    if (c == kNetworkInput || !node(c).is_conv || only_use(plan, c) != r) continue;
    node(c).relu_in_store = true;
    node(r).skip_forward = true;
  }
  // The other in-place ReLUs after a convolution, a batch norm or an
  // addition read by nothing else (the end of a residual block). Their
  // backward then reads the value they share with that node, which nothing
  // may write over before it (steps 8 and 9 see to it).
  for (int r = 0; options.fold_relu && r < count; ++r) {
    const auto* relu = as<ReLU<T>>(graph[static_cast<std::size_t>(r)]);
    if (!relu || !relu->inplace() || node(r).skip_forward || node(r).skip_backward) continue;
    const int c = input_of(r);
    if (c == kNetworkInput || only_use(plan, c) != r) continue;
    // A layer after it that works in place would write over the value its backward reads.
    const bool written_over = std::any_of(node(r).uses.begin(), node(r).uses.end(), [&](Use u) {
      const Node<T>& reader = graph[static_cast<std::size_t>(u.node)];
      return reader.layer && reader.layer->output_aliases_input();
    });
    if (written_over) continue;
    const Node<T>& before = graph[static_cast<std::size_t>(c)];
    if (node(c).is_conv || (before.merge && dynamic_cast<const Add<T>*>(before.merge.get()))) {
      node(c).relu_in_store = true;
      node(r).backward_from_output = true;
    } else if (as<BatchNorm<T>>(before)) {
      node(c).relu_after = true;
      node(r).skip_backward = true;
    } else {
      continue;
    }
    node(r).skip_forward = true;
  }
  // Such a ReLU whose value is read twice or more (a residual block's
  // output, read by the next block's convolution and its addition): the
  // last addition of the readers' gradients zeroes the sum where the value
  // is not positive as it stores it, and the ReLU makes no pass.
  for (int r = 0; r + 1 < count; ++r)
    node(r).backward_in_sum = node(r).backward_from_output && node(r).uses.size() > 1;
  // Whether node v's backward (or that of the ReLU it carries) reads its stored output. A
  // batch norm's ReLU makes its mask again from the batch norm's input instead, but is
  // counted here all the same: that only keeps its output from being shared sooner.
  auto backward_reads_output = [&](int v) {
    const Node<T>& n = graph[static_cast<std::size_t>(v)];
    if (node(v).relu_after || node(v).backward_from_output) return true;
    if (n.merge) return n.merge->backward_reads_output();
    return n.layer->backward_reads_output() && !node(v).skip_backward;
  };

  // The 2x2 MaxPool2d a convolution's value reaches through single uses and
  // skipped ReLUs (skip: which kind of skip may be crossed), or -1.
  auto pool_after = [&](int c, bool NodePlan::*skip) {
    int j = only_use(plan, c);
    while (j >= 0 && node(j).*skip) j = only_use(plan, j);
    const auto* pool = j >= 0 ? as<MaxPool2d<T>>(graph[static_cast<std::size_t>(j)]) : nullptr;
    return pool && pool->is_2x2() ? j : -1;
  };

  // 6. Planes forward, for forward kernels that work sample by sample.
  for (int c = 0; options.pass_planes && c < count; ++c) {
    if (!node(c).is_conv || !kernels::conv2d_forward_passes_planes(node(c).kernels.forward))
      continue;
    const int p = pool_after(c, &NodePlan::skip_forward);
    if (p < 0) continue;
    node(c).planes_to = p;
    node(p).fed_planes = true;
  }

  // 7. Planes backward: the convolution must need no input gradient, and its
  // weight kernel must be the one that reads dy by planes (any other choice
  // would change the bits).
  for (int c = 0; options.pass_planes && c < count; ++c) {
    if (!node(c).is_conv || node(c).needs_input_grad ||
        node(c).kernels.backward_weights != kernels::ConvKernel::Rows)
      continue;
    const int p = pool_after(c, &NodePlan::skip_backward);
    if (p < 0) continue;
    node(c).grad_planes_from = p;
    node(p).defer_input_grad = true;
  }

  // Whether the storage of value v is free once its one reader's backward
  // has run: owned by a node (not the caller), read by one node only, and
  // not read by its producer's backward; through views (in-place layers,
  // Flatten) back to the node that owns it.
  auto dead_after_use = [&](int v) {
    for (;;) {
      if (v == kNetworkInput || node(v).uses.size() != 1) return false;
      const Node<T>& n = graph[static_cast<std::size_t>(v)];
      if (backward_reads_output(v)) return false;
      if (n.merge) return true;
      if (!n.layer->output_aliases_input() && !node(v).skip_forward) return true;
      v = n.inputs[0];
    }
  };

  // 8. A MaxPool2d that still reads its stored input writes its input
  // gradient over it when nothing else needs it. An Add writes its sum over
  // one of its first two inputs that nothing reads after it (in a residual
  // block, the batch norm's output on the branch: its backward reads its
  // input, not its output).
  for (int i = 0; options.share_buffers && i < count; ++i) {
    const Node<T>& n = graph[static_cast<std::size_t>(i)];
    if (as<MaxPool2d<T>>(n) && !node(i).fed_planes && !node(i).defer_input_grad)
      node(i).overwrite_input = dead_after_use(input_of(i));
    if (n.merge && dynamic_cast<const Add<T>*>(n.merge.get()))
      for (int k = 0; k < 2 && node(i).sum_over_input < 0; ++k)
        if (dead_after_use(n.inputs[static_cast<std::size_t>(k)])) node(i).sum_over_input = k;
  }
  // A sum of two, one of them the output of a batch norm made after the
  // other input (a residual block's second batch norm, or its projection's):
  // the batch norm adds the other input as it stores (the sum commutes, so
  // the bits are those of the addition's own pass), and the addition only
  // records what its backward needs. In evaluation a batch norm folded into
  // its convolution makes no pass, and the addition then sums as above.
  for (int i = 0; options.share_buffers && i < count; ++i) {
    const Node<T>& n = graph[static_cast<std::size_t>(i)];
    if (!n.merge || !dynamic_cast<const Add<T>*>(n.merge.get()) || n.inputs.size() != 2) continue;
    for (int k = 1; k >= 0; --k) {  // the later of the two first
      const int v = n.inputs[static_cast<std::size_t>(k)];
      const int other = n.inputs[static_cast<std::size_t>(1 - k)];
      if (v == kNetworkInput || !as<BatchNorm<T>>(graph[static_cast<std::size_t>(v)]) ||
          node(v).relu_after || node(v).skip_forward || other >= v || !dead_after_use(v))
        continue;
      node(i).sum_over_input = k;
      node(i).sum_made_by = v;
      node(v).adds_for = i;
      break;
    }
  }

  // 9. An in-place ReLU or LeakyReLU writes over its input in forward: that
  // value must be read by nothing else, and its producer's backward must not
  // read it.
  for (int r = 0; r < count; ++r) {
    const Node<T>& in_place = graph[static_cast<std::size_t>(r)];
    const auto* relu = as<ReLU<T>>(in_place);
    const auto* leaky = as<LeakyReLU<T>>(in_place);
    if (!((relu && relu->inplace()) || (leaky && leaky->inplace())) || node(r).skip_forward)
      continue;
    const std::string instead = relu ? "ReLU(false)" : "LeakyReLU(negative_slope, false)";
    for (int v = input_of(r); v != kNetworkInput;) {
      const Node<T>& n = graph[static_cast<std::size_t>(v)];
      if (node(v).uses.size() != 1)
        fail(in_place.layer->label(), ": works in place, but its input (from '", n.name,
             "') is read by other nodes too; use ", instead);
      if (n.merge) {
        if (n.merge->backward_reads_output())
          fail(in_place.layer->label(), ": works in place over the output of ", n.merge->label(),
               ", whose backward reads it; use ", instead);
        break;
      }
      if (backward_reads_output(v))
        fail(in_place.layer->label(), ": works in place over the output of ", n.layer->label(),
             ", whose backward reads it; use ", instead);
      if (!n.layer->output_aliases_input()) break;
      v = n.inputs[0];
    }
  }

  // 10. A BatchNorm2d with running statistics reading a Conv2d read by
  // nothing else: in evaluation the executor runs the convolution with
  // w * gamma / sqrt(var + eps) and (b - mean) * gamma / sqrt(var + eps) +
  // beta, computed from the current weights and statistics at each such
  // forward, and skips the batch norm. Training never folds.
  for (int b = 0; options.fold_batchnorm && b < count; ++b) {
    const auto* bn = as<BatchNorm2d<T>>(graph[static_cast<std::size_t>(b)]);
    if (!bn || !bn->track_running_stats()) continue;
    const int c = input_of(b);
    if (c == kNetworkInput || !node(c).is_conv || only_use(plan, c) != b || node(c).relu_in_store ||
        node(c).planes_to >= 0)
      continue;
    node(c).batchnorm_folded = b;
    node(b).folded_in_eval = true;
  }

  // 11. An Add's backward copies dy once per input, so that a backward
  // writing over the gradient it receives (an in-place ReLU) cannot change
  // another input's. The copies are not needed when every input's gradient
  // goes where nothing writes over it: into the sum of a value read twice
  // or more, to the caller, into a merge, or into a layer whose output is
  // not a view of its input (only such a layer may pass dy on or write
  // over it). The inputs then share dy, and the Add makes no pass.
  auto gradient_stays_read_only = [&](int v) {
    if (v == kNetworkInput || node(v).uses.size() != 1) return true;
    const Node<T>& n = graph[static_cast<std::size_t>(v)];
    return n.merge || !n.layer->output_aliases_input();
  };
  for (int i = 0; options.share_buffers && i < count; ++i) {
    const Node<T>& n = graph[static_cast<std::size_t>(i)];
    if (!n.merge || !dynamic_cast<const Add<T>*>(n.merge.get())) continue;
    node(i).passes_gradient =
        std::all_of(n.inputs.begin(), n.inputs.end(), gradient_stays_read_only);
  }

  // 12. Gradients in shared buffers. Backward runs the nodes from the last
  // to the first. The input gradient a layer makes in memory of its own at
  // node i is read at the backward of the node that made the value; later
  // still where it is passed on (by a ReLU or an addition handing dy to the
  // node before, by a view such as Flatten); by the convolution that reads a
  // max-pool's dy by planes (7); and after backward when it is the network's
  // input gradient. The gradient of a value read by several nodes is the sum
  // of theirs, written just before the backward of the node that made the
  // value and read from there on in the same way. Two such gradients can be
  // the same memory when every reading of one is over before the other is
  // written.
  if (options.share_buffers) {
    constexpr int kUnshared = -1;  // memory outside this sharing: the caller's, a merge's
    // Memories by number: node i's input gradient is i, the sum for node
    // v's value count + v, the sum for the network's input 2 * count.
    auto sum_of = [count](int v) { return v == kNetworkInput ? 2 * count : count + v; };
    const int input_sum = sum_of(kNetworkInput);
    // For each node, the memory that holds the dy it receives, and that of
    // each of its input gradients.
    std::vector<int> dy_in(static_cast<std::size_t>(count), kUnshared);
    std::vector<std::vector<int>> grad_in(static_cast<std::size_t>(count));
    // For each memory: the earliest node (in node order) whose backward reads
    // it; -1 when it is read after backward.
    std::vector<int> last_read(static_cast<std::size_t>(input_sum + 1));
    auto at = [](auto& v, int i) -> auto& {
      return v[static_cast<std::size_t>(i)];
    };
    auto read = [&](int memory, int node_index) {
      if (memory != kUnshared) at(last_read, memory) = std::min(at(last_read, memory), node_index);
    };
    // Value v's gradient, made at node_index: read from each reader's input
    // gradient, summed into a memory of its own when there are several.
    auto gradient_of = [&](int v, const std::vector<Use>& uses, int node_index) {
      for (const Use& u : uses) read(at(at(grad_in, u.node), u.slot), node_index);
      if (uses.size() == 1) return at(at(grad_in, uses[0].node), uses[0].slot);
      at(last_read, sum_of(v)) = node_index;
      return sum_of(v);
    };
    for (int i = count - 1; i >= 0; --i) {
      const Node<T>& n = graph[static_cast<std::size_t>(i)];
      const NodePlan& p = node(i);
      at(last_read, i) = i;
      if (i + 1 < count) at(dy_in, i) = gradient_of(i, p.uses, i);
      if (p.grad_planes_from >= 0) read(at(dy_in, p.grad_planes_from), i);
      int memory = kUnshared;
      if (p.passes_gradient || p.skip_backward || p.backward_from_output ||
          (n.layer && n.layer->output_aliases_input()))
        memory = at(dy_in, i);  // dy itself, or written over in place
      else if (n.layer && p.needs_input_grad && !p.defer_input_grad && !p.overwrite_input)
        memory = i;
      at(grad_in, i).assign(n.inputs.size(), memory);
    }
    // The network's input gradient is still read when backward returns.
    if (input_grad) read(gradient_of(kNetworkInput, plan.input_uses, -1), -1);

    // Each memory, in the order backward writes them, goes into a free
    // buffer: the smallest that is large enough, else the largest (which
    // grows); a new one when none is free. A buffer takes the shape of the
    // largest gradient it holds. At node i, a value's sum is written before
    // the node's input gradient.
    auto& buffers = plan.grad_buffers;
    std::vector<int> free_before;  // per buffer: free for writes at nodes before this one
    auto assign = [&](int memory, int i, const Shape& need) {
      int best = -1;
      for (int k = 0; k < static_cast<int>(buffers.size()); ++k) {
        if (at(free_before, k) <= i) continue;
        if (best < 0) {
          best = k;
          continue;
        }
        const std::int64_t size = at(buffers, k).numel(), best_size = at(buffers, best).numel();
        const bool fits = size >= need.numel(), best_fits = best_size >= need.numel();
        if ((fits && (!best_fits || size < best_size)) || (!fits && !best_fits && size > best_size))
          best = k;
      }
      if (best < 0) {
        best = static_cast<int>(buffers.size());
        buffers.push_back(need);
        free_before.push_back(0);
      }
      if (at(buffers, best).numel() < need.numel()) at(buffers, best) = need;
      at(free_before, best) = at(last_read, memory);
      return best;
    };
    for (int i = count - 1; i >= 0; --i) {
      if (at(dy_in, i) == sum_of(i)) node(i).sum_buffer = assign(sum_of(i), i, node(i).output);
      if (!at(grad_in, i).empty() && at(grad_in, i)[0] == i)
        node(i).grad_buffer = assign(i, i, shape_of(input_of(i)));
    }
    if (input_grad && plan.input_uses.size() > 1)
      plan.input_sum_buffer = assign(input_sum, -1, input);
  }

  // 13. A batch norm doing its ReLU's backward (5) keeps its input and
  // statistics, from which its output can be remade exactly: the same kernel
  // over the same numbers. When the ReLU's one reader is the convolution
  // right after it, whose backward reads that output again (for its weight
  // gradient), the output need not stay in memory of its own between the
  // passes. Such batch norms all write into one buffer, which the
  // convolution reads at once in forward; in backward each output is made
  // again just before the convolution's backward, its last reader (the
  // batch norm's own backward, two nodes later, makes its ReLU's mask from
  // its input). The F(4x4, 3x3) weight gradient makes it itself as it
  // copies each sample, from the batch norm's input: then it is not
  // written to memory again at all. When the convolution's forward runs
  // on F(4x4, 3x3) too, the forward makes it in the same way and the batch
  // norm writes no output (but in an evaluation that folds the
  // convolution's own batch norm into it, step 10, where it writes it as
  // before). Those spans never overlap (a batch norm, its ReLU and the
  // convolution are three nodes in a row), so one buffer of the largest
  // output serves them all.
  for (int b = 0; options.remake_outputs && b + 2 < count; ++b) {
    if (!node(b).relu_after) continue;
    const int r = b + 1, c = b + 2;
    if (input_of(r) != b || only_use(plan, r) != c || !node(c).is_conv || node(c).planes_to >= 0)
      continue;
    node(b).output_remade = true;
    node(c).remakes_input_of = b;
    node(c).remakes_in_copy = Conv2d<T>::can_remake_input(node(c).kernels);
    if (node(c).remakes_in_copy && Conv2d<T>::can_remake_input_in_forward(node(c).kernels))
      node(b).output_made_by = c;
    if (node(b).output.numel() > plan.remade_buffer.numel()) plan.remade_buffer = node(b).output;
  }

  // 14. Memory: each buffer counted once, by the node that holds it.
  for (int i = 0; i < count; ++i) {
    const Node<T>& n = graph[static_cast<std::size_t>(i)];
    NodePlan& p = node(i);
    const auto bytes = [](const Shape& s) { return s.numel() * std::int64_t(sizeof(T)); };
    const Shape in = n.layer ? shape_of(n.inputs[0]) : Shape{};
    // A Dropout is a view in evaluation only; count what it holds in training.
    const bool dropout = as<Dropout<T>>(n) != nullptr;
    const bool view = n.layer && n.layer->output_aliases_input() && !dropout;
    p.output_bytes =
        (p.planes_to >= 0 || p.skip_forward || view || p.sum_over_input >= 0 || p.output_remade)
            ? 0
            : bytes(p.output);
    if (n.merge) {
      if (!p.passes_gradient)
        for (int v : n.inputs) p.grad_bytes += bytes(shape_of(v));
    } else if (p.needs_input_grad && !p.skip_backward && !p.defer_input_grad &&
               !p.overwrite_input && !view && p.grad_buffer < 0) {
      p.grad_bytes = bytes(in);
    }
    // The sum of the gradients of a value read twice or more (not the output's: the caller's dy).
    if (p.uses.size() > 1 && i + 1 < count && p.sum_buffer < 0) p.grad_bytes += bytes(p.output);
    if (const auto* relu = as<ReLU<T>>(n);
        relu && relu->inplace() && !p.skip_backward && !p.backward_from_output)
      p.cache_bytes = p.output.numel();                                        // a byte per element
    if (p.fed_planes || p.defer_input_grad) p.cache_bytes = p.output.numel();  // winners
    if (dropout) p.cache_bytes = bytes(p.output);                              // its mask
  }
  if (input_grad && plan.input_uses.size() > 1 && plan.input_sum_buffer < 0)
    plan.input_sum_bytes = input.numel() * std::int64_t(sizeof(T));
  return plan;
}

template <typename T>
std::string Plan::summary(const std::vector<Node<T>>& graph) const {
  auto mb = [](std::int64_t b) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << static_cast<double>(b) / 1e6;
    return os.str();
  };
  auto name = [&](int i) { return graph[static_cast<std::size_t>(i)].name; };
  std::size_t width = 12, type_width = 10;  // the columns fit the longest name and type
  for (const auto& n : graph) {
    width = std::max(width, n.name.size() + 2);
    type_width = std::max(type_width, n.type().size() + 1);
  }
  const int w = static_cast<int>(width), tw = static_cast<int>(type_width);
  std::ostringstream os;
  os << "plan for input " << input.str() << " (fold_relu " << options.fold_relu << ", pass_planes "
     << options.pass_planes << ", share_buffers " << options.share_buffers << ", fold_batchnorm "
     << options.fold_batchnorm << ", remake_outputs " << options.remake_outputs << ")\n";
  os << std::left << std::setw(w) << "node" << std::setw(tw) << "type" << std::setw(36)
     << "kernels (forward/data/weights)" << std::right << std::setw(8) << "out MB" << std::setw(8)
     << "grad MB" << std::setw(8) << "kept MB"
     << "  decisions\n";
  std::int64_t total = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NodePlan& p = nodes[i];
    std::string kernels = "-", notes;
    if (p.is_conv)
      kernels = std::string(kernels::conv_kernel_name(p.kernels.forward)) + "/" +
                (p.needs_input_grad ? kernels::conv_kernel_name(p.kernels.backward_data) : "none") +
                "/" + kernels::conv_kernel_name(p.kernels.backward_weights);
    auto note = [&](const std::string& s) { notes += (notes.empty() ? "" : "; ") + s; };
    if ((p.relu_in_store && p.sum_made_by < 0) || (p.relu_after && p.output_made_by < 0))
      note("stores max(y, 0)");
    if (p.relu_after) note("does the ReLU's backward");
    if (p.planes_to >= 0) note("planes to " + name(p.planes_to));
    if (p.grad_planes_from >= 0) note("dy by planes from " + name(p.grad_planes_from));
    if (p.relu_in_backward) note("does the ReLU's backward");
    if (p.fed_planes) note("input by planes");
    if (p.defer_input_grad) note("input gradient by planes");
    if (p.overwrite_input) note("gradient over its input");
    if (p.sum_made_by >= 0)
      note("sum made by " + name(p.sum_made_by));
    else if (p.sum_over_input >= 0)
      note("sum over " + name(graph[i].inputs[static_cast<std::size_t>(p.sum_over_input)]));
    if (p.adds_for >= 0) {
      const NodePlan& add = nodes[static_cast<std::size_t>(p.adds_for)];
      note("stores " + name(p.adds_for) + "'s sum" + (add.relu_in_store ? ", max(sum, 0)" : ""));
    }
    if (p.passes_gradient) note("inputs share dy");
    if (p.grad_buffer >= 0)
      note("input gradient in shared buffer " + std::to_string(p.grad_buffer));
    if (p.sum_buffer >= 0) note("gradient sum in shared buffer " + std::to_string(p.sum_buffer));
    if (p.batchnorm_folded >= 0) note("applies " + name(p.batchnorm_folded) + " in evaluation");
    if (p.folded_in_eval) note("folded into " + name(graph[i].inputs[0]) + " in evaluation");
    if (p.output_made_by >= 0)
      note("output made by " + name(p.output_made_by) + " as it copies its input");
    else if (p.output_remade)
      note("output remade in backward");
    if (p.remakes_input_of >= 0)
      note("remakes " + name(p.remakes_input_of) + "'s output" +
           (p.remakes_in_copy ? " in its weight gradient's copy" : ""));
    if (p.skip_forward) note("forward done by " + name(graph[i].inputs[0]));
    if (p.skip_backward) {
      const int before = graph[i].inputs[0];
      note("backward done by " +
           name(before != kNetworkInput && nodes[static_cast<std::size_t>(before)].relu_after
                    ? before
                    : p.uses[0].node));
    }
    if (p.backward_in_sum)
      note("backward in the sum of its gradients, from the stored output");
    else if (p.backward_from_output)
      note("backward from the stored output");
    if (!p.needs_input_grad) note("no input gradient");
    total += p.output_bytes + p.grad_bytes + p.cache_bytes;
    os << std::left << std::setw(w) << graph[i].name << std::setw(tw) << graph[i].type()
       << std::setw(36) << kernels << std::right << std::setw(8) << mb(p.output_bytes)
       << std::setw(8) << mb(p.grad_bytes) << std::setw(8) << mb(p.cache_bytes) << "  "
       << (notes.empty() ? "-" : notes) << "\n";
  }
  const auto bytes = [](const Shape& s) { return s.numel() * std::int64_t(sizeof(T)); };
  if (!grad_buffers.empty()) {
    std::int64_t shared = 0, held = 0;
    for (const Shape& buffer : grad_buffers) shared += bytes(buffer);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].grad_buffer >= 0) {
        const int in = graph[i].inputs[0];
        held += bytes(in == kNetworkInput ? input : nodes[static_cast<std::size_t>(in)].output);
      }
      if (nodes[i].sum_buffer >= 0) held += bytes(nodes[i].output);
    }
    if (input_sum_buffer >= 0) held += bytes(input);
    os << "gradients in " << grad_buffers.size() << " shared buffers: " << mb(shared) << " MB for "
       << mb(held) << " MB of gradients\n";
    total += shared;
  }
  if (remade_buffer.numel() > 0) {
    std::int64_t remade = 0;
    for (const NodePlan& p : nodes)
      if (p.output_remade) remade += bytes(p.output);
    const std::int64_t shared = bytes(remade_buffer);
    os << "outputs remade in backward, in 1 shared buffer: " << mb(shared) << " MB for "
       << mb(remade) << " MB of outputs\n";
    total += shared;
  }
  if (input_sum_bytes > 0) {
    os << "the network input's gradient, summed over its readers: " << mb(input_sum_bytes)
       << " MB\n";
    total += input_sum_bytes;
  }
  os << "activation memory (outputs, gradients, masks and winners): " << mb(total) << " MB\n";
  return os.str();
}

}  // namespace minidl
