"""FP8 linear layers: weights in float8 (e4m3) with one scale per output channel, activations quantized per
token on the fly, the product by ``torch._scaled_mm`` (PyTorch's FP8 GEMM; cuBLASLt on Hopper GPUs).

Why: a Llama-2-70B in bf16 takes 128.5 GiB, which leaves one 141 GB H200 almost no room for a KV cache;
in FP8 it takes half, and every decode step reads half the bytes. Hand-written (about 60 lines) because
transformers' own FP8 integration fetches its matmul kernels from the Hugging Face Hub at run time, and the
machines this runs on have no network. Only the decoder layers' projections are converted: embeddings,
norms and the output head stay in the model's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0  # largest finite e4m3 value


class Fp8Linear(nn.Module):
    """``y = x W^T (+ b)`` with ``W = weight * scale`` (weight FP8 [out, in], scale float32 [1, out])."""

    fast_accum = True  # FP8 accumulation shortcut of the GEMM; switched off for good if the build refuses it

    def __init__(self, in_features: int, out_features: int, bias: bool = False, device=None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=FP8, device=device),
                                   requires_grad=False)
        self.scale = nn.Parameter(torch.ones(1, out_features, dtype=torch.float32, device=device),
                                  requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device), requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Fp8Linear:
        """Quantize a linear layer's weights (per output channel, absmax scaling)."""
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1, keepdim=True) / FP8_MAX).clamp(min=1e-12)
        out = cls(linear.in_features, linear.out_features, linear.bias is not None, device=w.device)
        out.weight.data.copy_((w / scale).to(FP8))
        out.scale.data.copy_(scale.t())
        if linear.bias is not None:
            assert out.bias is not None  # made with a bias just above
            out.bias.data = linear.bias.detach().clone()
        return out

    def fill_random(self, std: float = 0.02, generator: torch.Generator | None = None) -> None:
        """Random weights of standard deviation ``std`` (benchmarks: no checkpoint is read)."""
        for start in range(0, self.out_features, 4096):  # in chunks: the float temporary stays small
            rows = self.weight.data[start:start + 4096]
            rows.copy_(torch.randn(rows.shape, device=rows.device, dtype=torch.bfloat16, generator=generator))
        self.scale.data.fill_(std)
        if self.bias is not None:
            self.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` times the dequantized weights (plus bias), in the input's shape."""
        shape = x.shape
        flat = x.reshape(-1, self.in_features)
        rows = flat.shape[0]
        if rows % 16:  # the FP8 GEMM wants row counts in multiples of 16
            flat = nn.functional.pad(flat, (0, 0, 0, 16 - rows % 16))
        x_scale = (flat.abs().amax(dim=1, keepdim=True).float() / FP8_MAX).clamp(min=1e-12)
        quantized = (flat.float() / x_scale).to(FP8)
        try:
            out = torch._scaled_mm(quantized, self.weight.t(), scale_a=x_scale, scale_b=self.scale,
                                   out_dtype=x.dtype, use_fast_accum=Fp8Linear.fast_accum)
        except RuntimeError:
            if not Fp8Linear.fast_accum:
                raise
            Fp8Linear.fast_accum = False  # not offered with row-wise scales by every build: exact accumulation
            return self.forward(x)
        out = out[:rows]
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.reshape(*shape[:-1], self.out_features)


def convert_linears(root: nn.Module, quantize: bool = True) -> int:
    """Replace every ``nn.Linear`` under ``root`` by an ``Fp8Linear`` (quantized from it, or, with
    ``quantize=False``, empty on the same device: for models built on the meta device); returns how many."""
    count = 0
    for name, child in list(root.named_children()):
        if isinstance(child, nn.Linear):
            new = (Fp8Linear.from_linear(child) if quantize else
                   Fp8Linear(child.in_features, child.out_features, child.bias is not None, device=child.weight.device))
            setattr(root, name, new)
            count += 1
        else:
            count += convert_linears(child, quantize)
    return count
