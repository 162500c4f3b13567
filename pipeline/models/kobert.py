"""KoBERT-style transformer: the one module that imports torch and transformers.

    python -m pipeline.train --model kobert        (configs/kobert.yaml)

Checkpoint: `checkpoint` (a Hub id such as skt/kobert-base-v1, or a local directory holding a BERT
checkpoint and its spiece.model). When it cannot be loaded (no network, as here and in CI) and
`offline_fallback` is on, the same kind of model is built locally: a SentencePiece tokenizer with
KoBERT's vocabulary layout is trained on the unlabeled headlines, a small BERT is pretrained on them
with masked-language modelling, and the result is cached under models/pretrained/ before fine-tuning.

KoBERT's tokenizer traps are handled by one adapter (KoBertTokenizer), used for both paths:
`[CLS] x [SEP]`, right padding, NFKC, all-zero token types, KoBERT's special ids
([UNK]=0 [PAD]=1 [CLS]=2 [SEP]=3 [MASK]=4), and a check that inputs are not mostly [UNK]
(the symptom of a vocabulary that does not match the checkpoint).

Training is a plain PyTorch loop (no transformers Trainer), so nothing reports to any tracker on its
own; pipeline.tracking logs the run like any other kind's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import shutil
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline import REPO_ROOT
from pipeline.cli import UserError
from pipeline.config import KobertConfig
from pipeline.models.base import TopicModel

SPIECE = "spiece.model"
SPECIALS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, KoBERT's layout
UNK, PAD, CLS, SEP, MASK = range(5)
PRETRAINED_DIR = REPO_ROOT / "models" / "pretrained"


class KoBertTokenizer:
    """SentencePiece model -> KoBERT-layout ids: [CLS] pieces [SEP], right-padded, token types 0."""

    def __init__(self, spiece_path: Path | str):
        import sentencepiece as spm

        self.path = Path(spiece_path)
        if not self.path.is_file():
            raise UserError(f"tokenizer model not found: {self.path}")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        pieces = [self.sp.id_to_piece(i) for i in range(len(SPECIALS))]
        if tuple(pieces) != SPECIALS:
            raise UserError(f"{self.path}: not a KoBERT-layout vocabulary (first ids {pieces}, want {list(SPECIALS)})")

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    @classmethod
    def train(cls, texts: Sequence[str], out_dir: Path, vocab_size: int) -> KoBertTokenizer:
        """Train a SentencePiece unigram model whose ids 0..4 are KoBERT's special tokens."""
        import sentencepiece as spm

        out_dir.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([unicodedata.normalize("NFKC", t) for t in texts]),
            model_prefix=str(out_dir / "spiece"), vocab_size=vocab_size, model_type="unigram",
            character_coverage=0.9995, unk_id=UNK, unk_piece="[UNK]", pad_id=PAD, pad_piece="[PAD]",
            bos_id=CLS, bos_piece="[CLS]", eos_id=SEP, eos_piece="[SEP]", user_defined_symbols=["[MASK]"],
            hard_vocab_limit=False, minloglevel=2, num_threads=2,
        )
        return cls(out_dir / SPIECE)

    def ids(self, text: str, max_length: int) -> list[int]:
        pieces = self.sp.encode(unicodedata.normalize("NFKC", text))
        return [CLS, *pieces[: max_length - 2], SEP]

    def __call__(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        """Batch encoding padded on the right to the longest item (dynamic padding)."""
        return self.pad([self.ids(t, max_length) for t in texts])

    @staticmethod
    def pad(rows: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Already-encoded rows as one right-padded batch with all-zero token types."""
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), PAD, dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
        return {"input_ids": input_ids, "attention_mask": (input_ids != PAD).astype(np.int64),
                "token_type_ids": np.zeros_like(input_ids)}

    def unk_share(self, texts: Sequence[str]) -> float:
        ids = [i for t in texts for i in self.sp.encode(unicodedata.normalize("NFKC", t))]
        return sum(i == UNK for i in ids) / max(len(ids), 1)

    def save(self, out_dir: Path) -> None:
        shutil.copyfile(self.path, out_dir / SPIECE)


def _torch_setup(seed: int):
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch, device, bf16


def _length_batches(rows: Sequence[Sequence[int]], size: int, rng: random.Random, window: int = 50):
    """Shuffled batches of similar length: padding to the batch's longest row costs ~40% on
    headlines (random batches pad to ~30 pieces, the mean is ~17). Rows are sorted by length only
    inside windows of `window` shuffled batches, and the batches are shuffled again."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), size * window):
        chunk = sorted(order[start:start + size * window], key=lambda i: len(rows[i]))
        batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _log(message: str) -> None:
    print(f"  [kobert] {message}", file=sys.stderr, flush=True)


class KobertModel(TopicModel):
    kind = "kobert"
    audit_refits = False  # k extra fine-tunings on a CPU; the TF-IDF run audits the same labels

    @classmethod
    def config_class(cls) -> type:
        return KobertConfig

    def __init__(self, config: KobertConfig, labels: Sequence[str] = ()):
        super().__init__(config, labels)
        self.tokenizer: KoBertTokenizer | None = None
        self.network = None

    # --- checkpoint ------------------------------------------------------------------------------
    def _load_checkpoint(self, num_labels: int, seed: int):
        """(tokenizer, classifier) from the configured checkpoint, or from the local offline build."""
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        c = self.config
        try:
            source = Path(c.checkpoint) if Path(c.checkpoint).is_dir() else _hub_snapshot(c.checkpoint)
            tokenizer = KoBertTokenizer(source / SPIECE)
            network = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=num_labels)
            self.info["checkpoint"] = c.checkpoint
        except (OSError, ValueError, UserError) as err:
            if not c.offline_fallback:
                raise UserError(f"cannot load checkpoint {c.checkpoint} ({type(err).__name__}); set checkpoint to "
                                "a local directory or enable offline_fallback") from None
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"checkpoint {c.checkpoint} not available ({reason}); "
                  "building a KoBERT-style model locally", file=sys.stderr, flush=True)
            source = self._local_pretrained()
            tokenizer = KoBertTokenizer(source / SPIECE)
            # an MLM checkpoint has no classifier head yet: transformers' report of that is expected noise
            hf_logging.set_verbosity_error()
            import torch

            torch.manual_seed(seed)  # the new head starts the same whether or not the build was cached
            network = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=num_labels)
            self.info["checkpoint"] = f"local:{source.name}"
        if tokenizer.vocab_size != network.config.vocab_size:
            raise UserError(f"tokenizer has {tokenizer.vocab_size} pieces but the checkpoint expects "
                            f"{network.config.vocab_size}: inputs would be garbage")
        return tokenizer, network

    def _local_pretrained(self) -> Path:
        """Tokenizer + MLM-pretrained small BERT on the headline corpus, cached by corpus and config."""
        c = self.config
        if not self.corpus:
            raise UserError("offline KoBERT build needs a headline corpus (model.corpus)")
        recipe = json.dumps({k: getattr(c, k) for k in ("vocab_size", "hidden_size", "layers", "heads",
                                                       "max_length", "pretrain_epochs", "pretrain_lr", "seed")})
        digest = hashlib.sha256((recipe + "\n".join(self.corpus)).encode()).hexdigest()[:12]
        out = Path(c.pretrained_dir) if Path(c.pretrained_dir).is_absolute() else REPO_ROOT / c.pretrained_dir
        target = out / f"kobert-local-{digest}"
        if (target / "config.json").is_file():
            _log(f"using cached pretrained model {target}")
            return target
        staging = out / f".staging-{digest}"
        shutil.rmtree(staging, ignore_errors=True)
        start = time.perf_counter()
        tokenizer = KoBertTokenizer.train(self.corpus, staging, c.vocab_size)
        self.info["tokenizer_seconds"] = round(time.perf_counter() - start, 1)
        _log(f"tokenizer: {tokenizer.vocab_size} pieces in {self.info['tokenizer_seconds']} s")
        start = time.perf_counter()
        self._pretrain(tokenizer).save_pretrained(str(staging))
        self.info["pretrain_seconds"] = round(time.perf_counter() - start, 1)
        staging.rename(target)
        return target

    def _pretrain(self, tokenizer: KoBertTokenizer):
        from transformers import BertConfig, BertForMaskedLM

        c = self.config
        torch, device, bf16 = _torch_setup(c.seed)
        bert = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.layers,
                          num_attention_heads=c.heads, intermediate_size=4 * c.hidden_size,
                          max_position_embeddings=max(64, c.max_length), pad_token_id=PAD, type_vocab_size=2)
        model = BertForMaskedLM(bert).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=c.pretrain_lr, weight_decay=0.01)
        steps = c.pretrain_epochs * math.ceil(len(self.corpus) / c.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, c.pretrain_lr, total_steps=max(steps, 1),
                                                       pct_start=0.06)
        rng = random.Random(c.seed)
        encoded = [tokenizer.ids(t, c.max_length) for t in self.corpus]
        model.train()
        step = 0
        for _ in range(c.pretrain_epochs):
            for idx in _length_batches(encoded, c.batch_size, rng):
                batch = tokenizer.pad([encoded[i] for i in idx])
                inputs, labels = _mask_tokens(torch.tensor(batch["input_ids"]), tokenizer.vocab_size, c.mask_prob)
                labels = labels.to(device)
                chosen = labels != -100
                mask = torch.tensor(batch["attention_mask"]).to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    hidden = model.bert(input_ids=inputs.to(device), attention_mask=mask).last_hidden_state
                    # vocabulary logits for the masked positions only: ~6x cheaper than for every token
                    logits = model.cls(hidden[chosen]).float()
                loss = torch.nn.functional.cross_entropy(logits, labels[chosen])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                if step % 100 == 0:
                    _log(f"pretrain step {step}/{steps} loss {loss.item():.3f}")
        return model

    # --- fine-tuning -----------------------------------------------------------------------------
    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None) -> KobertModel:
        c = self.config
        self.labels = tuple(sorted(set(labels)))
        distilled = self._distill(titles, labels, seed, sample_weight)  # first: a bad teacher fails fast
        torch, device, bf16 = _torch_setup(seed)  # before loading: the new classifier head is seeded too
        self.tokenizer, network = self._load_checkpoint(len(self.labels), seed)
        torch.manual_seed(seed)  # the offline build consumed random numbers; fine-tuning starts the same either way
        texts = self.texts(titles)
        unk = self.tokenizer.unk_share(texts[:1000])
        if unk > 0.5:
            raise UserError(f"{unk:.0%} of input pieces are [UNK]: the tokenizer does not match the checkpoint")
        y = np.array([self.labels.index(label) for label in labels])
        rng = random.Random(seed)
        held = set(rng.sample(range(len(texts)), k=max(1, int(len(texts) * c.early_stopping_fraction))))
        fit_idx = [i for i in range(len(texts)) if i not in held]
        held_idx = sorted(held)
        # what each training row teaches: a target distribution (one-hot for labeled rows) and a weight
        targets = np.eye(len(self.labels), dtype=np.float32)[y[fit_idx]]
        row_w = np.ones(len(fit_idx)) if sample_weight is None else np.asarray(sample_weight, dtype=float)[fit_idx]
        fit_texts = [texts[i] for i in fit_idx]
        if distilled is not None:
            fit_texts += distilled[0]
            targets = np.concatenate([targets, distilled[1]])
            row_w = np.concatenate([row_w, np.ones(len(distilled[0]))])
        # balanced class weights, as the TF-IDF model: crime is rare
        counts = np.bincount(y[fit_idx], minlength=len(self.labels))
        class_w = len(fit_idx) / (len(self.labels) * np.maximum(counts, 1))
        row_w = torch.tensor(row_w * (targets @ class_w), dtype=torch.float32)
        targets = torch.tensor(targets)
        encoded = [self.tokenizer.ids(t, c.max_length) for t in fit_texts]
        network.to(device)
        optimizer = torch.optim.AdamW(network.parameters(), lr=c.learning_rate, weight_decay=0.01)
        steps = c.epochs * math.ceil(len(encoded) / c.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, c.learning_rate, total_steps=max(steps, 1),
                                                       pct_start=0.1)
        best, best_state, patience = -1.0, None, 0
        start = time.perf_counter()
        for epoch in range(c.epochs):
            network.train()
            for idx in _length_batches(encoded, c.batch_size, rng):
                padded = self.tokenizer.pad([encoded[i] for i in idx])
                batch = {k: torch.tensor(v).to(device) for k, v in padded.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    logits = network(**batch).logits.float()
                # soft-target cross-entropy: equals the weighted CE for one-hot rows
                per_row = -(targets[idx].to(device) * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
                loss = (per_row * row_w[idx].to(device)).mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            self.network = network
            score = _macro_f1(y[held_idx], self.predict_raw_texts([texts[i] for i in held_idx]).argmax(axis=1),
                              len(self.labels))
            _log(f"epoch {epoch + 1}/{c.epochs}: early-stopping macro-F1 {score:.3f} "
                 f"({time.perf_counter() - start:.0f} s)")
            if score > best:
                best, patience = score, 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            else:
                patience += 1
                if patience >= c.patience:
                    break
        network.load_state_dict(best_state)
        self.network = network.eval()
        self.info["finetune_seconds"] = round(time.perf_counter() - start, 1)
        return self

    def _distill(self, titles: Sequence[str], labels: Sequence[str], seed: int,
                 sample_weight: Sequence[float] | None) -> tuple[list[str], np.ndarray] | None:
        """(texts, soft targets) for the headlines the labels left out, from a teacher fit on the same
        training rows. The label model abstains on a third of the headlines (mixed sections, the newest
        listings); a teacher of another kind (TF-IDF: characters and morphemes) labels them softly, so
        the transformer also learns from that part of the distribution."""
        c = self.config
        if c.teacher == "none" or not self.unlabeled:
            return None
        if c.teacher == self.kind:
            raise UserError(f"teacher must be another model kind than {self.kind}")
        if self.teacher is None:
            from pipeline.models import new_model

            self.teacher = new_model(c.teacher)
        start = time.perf_counter()
        teacher = self.teacher.fit(titles, labels, seed=seed, sample_weight=sample_weight)
        if set(teacher.labels) != set(self.labels):
            raise UserError(f"teacher labels {teacher.labels} differ from {self.labels}")
        soft = teacher.predict_raw(self.unlabeled)[:, [teacher.labels.index(label) for label in self.labels]]
        self.info["teacher"] = {"kind": teacher.kind, "config": dataclasses.asdict(teacher.config),
                                "unlabeled_rows": len(self.unlabeled)}
        self.info["teacher_seconds"] = round(time.perf_counter() - start, 1)
        _log(f"teacher {teacher.kind}: soft labels for {len(self.unlabeled)} unlabeled headlines "
             f"in {self.info['teacher_seconds']} s")
        return self.texts(self.unlabeled), soft.astype(np.float32)

    # --- inference -------------------------------------------------------------------------------
    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        return self.predict_raw_texts(self.texts(titles))

    def predict_raw_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Batched inference; batches of similar length so dynamic padding stays short."""
        import torch

        if self.network is None or self.tokenizer is None:
            raise RuntimeError("model is not fitted")
        device = next(self.network.parameters()).device
        encoded = [self.tokenizer.ids(t, self.config.max_length) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        self.network.eval()
        with torch.inference_mode():
            for start in range(0, len(order), self.config.predict_batch_size):
                idx = order[start:start + self.config.predict_batch_size]
                batch = self.tokenizer.pad([encoded[i] for i in idx])
                logits = self.network(**{k: torch.tensor(v).to(device) for k, v in batch.items()}).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    # --- persistence -----------------------------------------------------------------------------
    def _save_weights(self, model_dir: Path) -> None:
        self.network.save_pretrained(str(model_dir / "hf"))
        self.tokenizer.save(model_dir)

    def _load_weights(self, model_dir: Path) -> None:
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.tokenizer = KoBertTokenizer(model_dir / SPIECE)
        self.network = AutoModelForSequenceClassification.from_pretrained(str(model_dir / "hf")).eval()


def _hub_snapshot(repo_id: str) -> Path:
    """Local folder of a Hub checkpoint: the cache if it has one, else a download. An unreachable
    Hub fails in seconds instead of the client's ~25 s of retries (air-gapped machines, CI)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, snapshot_download

    files = [SPIECE, "config.json", "model.safetensors", "pytorch_model.bin"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=files, local_files_only=True))
    except OSError:
        pass  # not cached
    if constants.HF_HUB_OFFLINE:
        raise OSError("HF_HUB_OFFLINE is set")
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=5).close()
    except OSError as err:
        raise OSError(f"{endpoint.hostname} unreachable: {err}") from None
    return Path(snapshot_download(repo_id, allow_patterns=files))


def _mask_tokens(input_ids, vocab_size: int, prob: float):
    """BERT masking: choose `prob` of real tokens; 80% -> [MASK], 10% -> random, 10% kept."""
    import torch

    labels = input_ids.clone()
    special = input_ids < len(SPECIALS)
    chosen = (torch.rand(input_ids.shape) < prob) & ~special
    labels[~chosen] = -100
    inputs = input_ids.clone()
    to_mask = chosen & (torch.rand(input_ids.shape) < 0.8)
    inputs[to_mask] = MASK
    to_random = chosen & ~to_mask & (torch.rand(input_ids.shape) < 0.5)
    inputs[to_random] = torch.randint(len(SPECIALS), vocab_size, input_ids.shape)[to_random]
    return inputs, labels


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    scores = []
    for c in range(k):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))
