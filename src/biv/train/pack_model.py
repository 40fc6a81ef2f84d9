"""The models of a pack: P runs of one architecture trained together, each with its own weights.

Every parameter tensor is member-major: member m's values are the m-th of P equal chunks
(``p.view(P, -1)[m]``), which is what :class:`biv.train.optim.PackAdam` updates. Members are never
coupled: no layer mixes values of two members.

* :class:`StackedMLP`: the MLP as batched layers, one ``baddbmm`` per layer for the whole pack
  (BatchNorm over the P x C channels of all members at once: the statistics are per channel,
  so per member).
* :class:`ModulePack`: any other model (the image CNN, ResNet-18) as P modules run one after
  another, whose parameters are views of stacked tensors.

Member m starts from the weights a solo run of its seed gets: ``torch.manual_seed(seed)`` then
``biv.train.models.build_model``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from biv.config.model import ModelSpec
from biv.train.models import MLP, build_model

Inputs = Callable[[Tensor], Tensor]  # raw batch -> model inputs (biv.train.run_data.RunData.inputs)


def _batched(op, *tensors: Tensor) -> Tensor:
    """``op`` (``torch.bmm`` or ``torch.baddbmm``) over the members' (P, ...) ``tensors``, the
    last two the matrices. Torch computes a batch of one as a plain matrix product, and where
    the result is a vector, with a matrix-vector kernel whose sums run in another order than the
    same member's product in a batch of several: such a product of a pack of one runs as the
    first of two identical members."""
    a, b = tensors[-2:]
    if len(a) > 1 or 1 not in (a.shape[1], b.shape[2]):
        return op(*tensors)
    return op(*(t.expand(2, *t.shape[1:]) for t in tensors))[:1]


def _linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x @ weight^T + bias`` per member: the bits of ``baddbmm`` (the product rounded, then the
    bias added), without its copy of the bias into the output before the product."""
    return _batched(torch.bmm, x, weight.transpose(1, 2)).add_(bias.unsqueeze(1))


class _StackedLinear(torch.autograd.Function):
    """``baddbmm(bias, x, weight^T)`` with the gradients ``nn.Linear`` computes, member by member:
    the same products (``grad @ W``, ``x^T @ grad``) and the bias gradient summed per member
    (``grad[m].sum(0)``), so that no gradient depends on the pack's size. The bias gradient
    matters bit for bit: before a BatchNorm its exact value is 0, the computed one is round-off,
    and Adam, which is scale-free, turns round-off into steps of size lr, which the running
    statistics then carry into the test metrics."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = _batched(torch.bmm, grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = _batched(torch.bmm, x.transpose(1, 2), grad).transpose(1, 2)
        return grad_x, grad_weight, torch.stack([g.sum(0) for g in grad.unbind(0)])


class StackedLinear(nn.Module):
    """P linear layers: weight (P, out, in), bias (P, out); inputs -> (P, B, out). A member
    computes what its own ``nn.Linear`` computes, to the bit (the same products and sums)."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))

    def forward(self, x: Tensor) -> Tensor:
        """(P, B, in), or (B, in) shared by the members."""
        if x.ndim == 2:  # not one product against all members' weights: its sums would
            x = x.expand(len(self.weight), *x.shape)  # depend on the pack's size
        if torch.is_grad_enabled():
            return _StackedLinear.apply(x, self.weight, self.bias)
        return _linear(x, self.weight, self.bias)


class StackedBatchNorm1d(nn.BatchNorm1d):
    """P BatchNorm1d layers of C features as one of P*C features (member-major); (P, B, C) ->
    (P, B, C). A BatchNorm1d, so that ``biv.train.evaluation.batch_statistics`` applies to it."""

    def __init__(self, layers: Sequence[nn.BatchNorm1d]):
        first = layers[0]
        super().__init__(
            len(layers) * first.num_features,
            first.eps,
            first.momentum,
            device=first.weight.device,
            dtype=first.weight.dtype,
        )
        with torch.no_grad():
            for name, value in self.state_dict().items():
                if value.ndim:  # weight, bias, running statistics; not num_batches_tracked
                    value.copy_(torch.cat([layer.state_dict()[name] for layer in layers]))

    def forward(self, x: Tensor) -> Tensor:
        members, batch, features = x.shape
        flat = x.transpose(0, 1).reshape(batch, members * features)
        return super().forward(flat).reshape(batch, members, features).transpose(0, 1)


class StackedMLP(nn.Module):
    """P :class:`biv.train.models.MLP` of one shape as batched layers; inputs (B, F), shared by all
    members, or (P, B, F); outputs (P, B)."""

    #: One backward pass of the members' summed losses.
    backward_per_member = False

    def __init__(self, mlps: Sequence[MLP]):
        super().__init__()
        self.members = len(mlps)
        layers: list[nn.Module] = []
        for position, layer in enumerate(mlps[0]):
            same = [mlp[position] for mlp in mlps]
            if isinstance(layer, nn.Linear):
                layers.append(StackedLinear(same))
            elif isinstance(layer, nn.BatchNorm1d):
                layers.append(StackedBatchNorm1d(same))
            else:
                layers.append(layer)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:  # ReLU in place, on the fresh output of the layer before it
            x = x.relu_() if isinstance(layer, nn.ReLU) else layer(x)
        return x.squeeze(2)

    def predictions(self, x: Tensor, inputs: Inputs) -> Iterator[Tensor]:
        """Each member's predictions (B,) on the batch ``inputs(x)``, from one forward pass of
        the pack; one backward pass of the members' summed losses follows."""
        pred = self(inputs(x))
        return (pred[m] for m in range(self.members))

    def stacked(self) -> list[Tensor]:
        """The member-major parameter tensors."""
        return list(self.parameters())

    def gradients(self) -> list[Tensor]:
        return [_grad(p) for p in self.parameters()]


class ModulePack(nn.Module):
    """P modules of one architecture, run one after another; inputs (B, ...) shared by all
    members or (P, B, ...); outputs (P, B). Each module's parameters are views of the stacked
    (P, ...) tensors :meth:`parameters` yields; their gradients are stacked after backward."""

    #: Each member's backward pass before the next member's forward pass.
    backward_per_member = True

    def __init__(self, modules: Sequence[nn.Module], sample_ndim: int):
        super().__init__()
        self.members, self.sample_ndim = len(modules), sample_ndim
        self.nets = nn.ModuleList(modules)
        names = [name for name, _ in modules[0].named_parameters()]
        self._stacked = []
        for name in names:
            stacked = torch.stack([m.get_parameter(name).detach() for m in modules])
            owner, _, leaf = name.rpartition(".")
            for member, module in enumerate(modules):
                setattr(module.get_submodule(owner), leaf, nn.Parameter(stacked[member]))
            self._stacked.append(stacked)
        self._names = names

    def forward(self, x: Tensor) -> Tensor:
        shared = self._shared(x)
        outputs = [net(x if shared else x[m]).squeeze(1) for m, net in enumerate(self.nets)]
        return torch.stack(outputs)

    def predictions(self, x: Tensor, inputs: Inputs) -> Iterator[Tensor]:
        """Each member's predictions (B,), computed when asked for: the caller runs a member's
        backward pass before it asks for the next member's (``backward_per_member``), so that one
        member's batch and activations are held at a time (as in a solo run: its memory)."""
        shared = self._shared(x)
        x = inputs(x) if shared else x  # converted once when the members share it
        for m, net in enumerate(self.nets):
            yield net(x if shared else inputs(x[m])).squeeze(1)

    def _shared(self, x: Tensor) -> bool:
        """Whether ``x`` is one batch (B, ...) for all members, not one per member (P, B, ...)."""
        return x.ndim == self.sample_ndim + 1

    def stacked(self) -> list[Tensor]:
        """The (P, ...) tensors the members' parameters are views of."""
        return self._stacked

    def gradients(self) -> list[Tensor]:
        """Each stacked tensor's gradient: the members' gradients (0 where one has none)."""
        return [
            torch.stack([_grad(net.get_parameter(name)) for net in self.nets])
            for name in self._names
        ]


def _grad(p: Tensor) -> Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)


def build_pack_model(
    spec: ModelSpec,
    input_shape: Sequence[int],
    seeds: Sequence[int],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> StackedMLP | ModulePack:
    """The pack's model on ``device``: member m initialised as a solo run of ``seeds[m]`` (on
    the CPU, from ``torch.manual_seed(seed)``). Never move it afterwards (``.to`` would
    replace the tensors a :class:`ModulePack`'s parameters are views of)."""
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(build_model(spec, input_shape).to(device, dtype))
    if spec.name == "mlp":
        return StackedMLP(members)
    return ModulePack(members, len(input_shape))
