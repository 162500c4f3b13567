"""Masked-only MLM logits (pipeline.models.kobert pretraining) vs the model's own full-vocabulary loss.

    .venv/bin/python bench/mlm_loss_bench.py

Milliseconds per training step of the offline build's size (hidden 256, 4 layers, 8,002 pieces; batch 64
of 20 pieces, 15% masked), each variant timed twice, alternating.
"""

import time

import torch
from transformers import BertConfig, BertForMaskedLM

STEPS, WARMUP = 25, 3


def main() -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=8002, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024, max_position_embeddings=64, pad_token_id=1)
    model = BertForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    ids = torch.randint(5, 8002, (64, 20))
    chosen = torch.rand(ids.shape) < 0.15
    labels = ids.masked_fill(~chosen, -100)

    def full() -> torch.Tensor:
        return model(input_ids=ids, labels=labels).loss

    def masked() -> torch.Tensor:
        hidden = model.bert(input_ids=ids).last_hidden_state[chosen]
        return torch.nn.functional.cross_entropy(model.cls(hidden), labels[chosen])

    for name, loss in (("full", full), ("masked-only", masked)) * 2:
        for step in range(WARMUP + STEPS):
            if step == WARMUP:
                start = time.perf_counter()
            loss().backward()
            optimizer.step()
            optimizer.zero_grad()
        print(f"{name:12s} {(time.perf_counter() - start) / STEPS * 1000:.0f} ms/step")


if __name__ == "__main__":
    main()
