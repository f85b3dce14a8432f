#!/usr/bin/python3
"""attention.py - the PyTorch differential test (diff.py's harness and
checks) of the attention layers: multihead_attention against
torch.nn.MultiheadAttention(batch_first=True) with the same weights
(in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), causal and
not, with and without biases, and scaled_dot_product_attention against
softmax(q k^T / sqrt(D)) v written out (torch 1.13 has no
F.scaled_dot_product_attention). Same options as diff.py."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diff  # noqa: E402  (exits 77 without torch or numpy)
from diff import nn, torch  # noqa: E402


def causal_mask(t):
    """torch's boolean attn_mask: True where a query may not look."""
    return torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)


class Mha(nn.Module):
    """tests/torch/mha.nn."""

    def __init__(self):
        super().__init__()
        self.m = nn.MultiheadAttention(8, 2, batch_first=True)
        self.y = nn.Linear(40, 3)

    def forward(self, x):
        x = x.view(-1, 5, 8)
        m, _ = self.m(x, x, x, need_weights=False, attn_mask=causal_mask(5))
        return self.y((x + m).flatten(1))


class MhaNoBias(nn.Module):
    """tests/torch/mha_nobias.nn."""

    def __init__(self):
        super().__init__()
        self.a = nn.MultiheadAttention(12, 4, bias=False, batch_first=True)
        self.b = nn.MultiheadAttention(12, 1, bias=False, batch_first=True)
        self.y = nn.Linear(84, 2)

    def train(self, mode=True):
        # torch 1.13's fast path (eval mode, no grad) fails without biases;
        # dropout is 0, so training mode computes the same
        super().train(mode)
        self.a.training = self.b.training = True
        return self

    def forward(self, x):
        x = x.view(-1, 7, 12)
        a, _ = self.a(x, x, x, need_weights=False)
        b, _ = self.b(a, a, a, need_weights=False, attn_mask=causal_mask(7))
        return self.y(b.flatten(1))


def sdpa(q, k, v, causal):
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if causal:
        s = s.masked_fill(causal_mask(q.shape[-2]), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


class Sdpa(nn.Module):
    """tests/torch/sdpa.nn."""

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(6, 4)
        self.k = nn.Linear(6, 4)
        self.v = nn.Linear(6, 4)
        self.y = nn.Linear(40, 3)

    def forward(self, x):
        x = x.view(-1, 2, 5, 6)
        a = sdpa(self.q(x), self.k(x), self.v(x), True)
        return self.y(a.flatten(1))


# SGD, not Adam: a key bias has no gradient (softmax ignores a constant
# added to every score of a row), so its computed gradient is rounding
# noise, which Adam would scale up to steps of lr in either direction.
diff.MODELS[:] = [
    dict(name="mha", module=Mha, batch=4, n_in=40, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
         seed=31),
    dict(name="mha_nobias", module=MhaNoBias, batch=3, n_in=84, n_out=2,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
         seed=32),
    dict(name="sdpa", module=Sdpa, batch=3, n_in=60, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.05),
         seed=33),
]

if __name__ == "__main__":
    sys.exit(diff.main())
