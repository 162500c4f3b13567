"""KoBERT-style transformer, trained with transformers' Trainer: the one module that imports torch and transformers.

    python -m pipeline.train --model kobert                                  (configs/kobert.yaml; CPU or one GPU)
    accelerate launch --num_processes 4 -m pipeline.train --model kobert     (4 GPUs, data parallel)
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 -m pipeline.train --model kobert   (2 CPU processes)

`checkpoint` is a Hub id (skt/kobert-base-v1) or a local directory with a BERT checkpoint and its
spiece.model; when neither loads and `offline_fallback` is on, the same kind of model is built from our
headlines (SentencePiece with KoBERT's layout, MLM pretraining) and cached under models/pretrained/.
The Trainer does schedule, clipping, bf16, length grouping, padding and early stopping with the best
epoch restored; written here are only the tokenizer conversion, two losses and the curve callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.modeling_outputs import MaskedLMOutput
from transformers.utils import logging as hf_logging

from pipeline.cli import UserError
from pipeline.config import KobertConfig
from pipeline.models.base import NO_INPUTS, EpochLog, FitInputs, TopicModel
from pipeline.models.onnx import GRAPH_FILE, OnnxRunner
from pipeline.names import EPOCHS, metric

SPIECE = "spiece.model"
SPECIALS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, KoBERT's layout
UNK, PAD, CLS, SEP, MASK = range(5)

hf_logging.disable_progress_bar()


def kobert_tokenizer(spiece_path: Path, max_length: int) -> PreTrainedTokenizerFast:
    """KoBERT's SentencePiece vocabulary as a fast tokenizer (no protobuf conversion): the unigram pieces
    and scores, NFKC, SentencePiece's word-boundary marker, `[CLS] x [SEP]`."""
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if not spiece_path.is_file():
        raise UserError(f"tokenizer model not found: {spiece_path}")
    sp = spm.SentencePieceProcessor(model_file=str(spiece_path))
    pieces = [sp.id_to_piece(i) for i in range(len(SPECIALS))]
    if tuple(pieces) != SPECIALS:
        raise UserError(f"{spiece_path}: not a KoBERT-layout vocabulary (first ids {pieces}, want {list(SPECIALS)})")
    tok = Tokenizer(models.Unigram([(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())], UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS),
                                                                                                 ("[SEP]", SEP)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **dict(zip(
        ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token"), SPECIALS, strict=True)))


def train_spiece(texts: Sequence[str], out_dir: Path, vocab_size: int) -> Path:
    """A SentencePiece unigram model whose ids 0..4 are KoBERT's special tokens."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([unicodedata.normalize("NFKC", t) for t in texts]),
        model_prefix=str(out_dir / "spiece"), vocab_size=vocab_size, model_type="unigram",
        character_coverage=0.9995, unk_id=UNK, unk_piece="[UNK]", pad_id=PAD, pad_piece="[PAD]",
        bos_id=CLS, bos_piece="[CLS]", eos_id=SEP, eos_piece="[SEP]", user_defined_symbols=["[MASK]"],
        hard_vocab_limit=False, minloglevel=2, num_threads=2,
    )
    return out_dir / SPIECE


def _log(message: str) -> None:
    print(f"  [kobert] {message}", file=sys.stderr, flush=True)


class _Curves(TrainerCallback):
    """Forwards the Trainer's per-epoch loss and evaluation metrics to the run's logger as `epochs/<phase>_<name>`."""

    def __init__(self, phase: str, log: EpochLog | None):
        self.phase, self.log = phase, log

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = {metric(EPOCHS, f"{self.phase}_{k}"): float(v) for k, v in (logs or {}).items()
                  if k in ("loss", "eval_loss", "eval_macro_f1")}
        if values and self.log is not None:  # the Trainer prints them too
            self.log(values, round(state.epoch or 0))


class _SoftTargetTrainer(Trainer):
    """Weighted soft-target cross-entropy: a one-hot row gives the usual (class- and confidence-weighted)
    cross-entropy, a distilled row the teacher's whole distribution."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        targets, weight = inputs.pop("labels"), inputs.pop("weight")
        outputs = model(**inputs)
        loss = (-(targets * torch.log_softmax(outputs.logits.float(), -1)).sum(-1) * weight).mean()
        return (loss, outputs) if return_outputs else loss


class _MaskedOnlyMLM(BertForMaskedLM):
    """MLM loss from vocabulary logits at the masked positions only (~40% less time per step on CPU than
    every token's: bench/mlm_loss_bench.py). In forward, so data-parallel wrappers run it as the model."""

    accepts_loss_kwargs = False  # its loss is a plain mean: the Trainer must not rescale it across processes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        chosen = labels != -100
        logits = self.cls(hidden.last_hidden_state[chosen]).float()
        if not chosen.any():  # nothing masked in this batch (tiny corpora): no loss rather than NaN
            return MaskedLMOutput(loss=logits.sum() * 0, logits=logits)
        return MaskedLMOutput(loss=torch.nn.functional.cross_entropy(logits, labels[chosen]), logits=logits)


def _args(out: str, c: KobertConfig, seed: int, epochs: int, lr: float, **extra) -> TrainingArguments:
    """Trainer settings shared by pretraining and fine-tuning (one place for schedule, clipping, bf16)."""
    return TrainingArguments(
        output_dir=out, per_device_train_batch_size=c.batch_size, per_device_eval_batch_size=c.predict_batch_size,
        num_train_epochs=epochs, learning_rate=lr, weight_decay=0.01, warmup_steps=0.1, lr_scheduler_type="cosine",
        max_grad_norm=1.0, train_sampling_strategy="group_by_length", eval_strategy="epoch",
        logging_strategy="epoch", seed=seed, data_seed=seed, report_to="none", disable_tqdm=True,
        remove_unused_columns=False, dataloader_pin_memory=torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(), **extra)


class KobertModel(TopicModel):
    kind = "kobert"
    audit_refits = False  # k extra fine-tunings on a CPU; the TF-IDF run audits the same labels

    @classmethod
    def config_class(cls) -> type:
        return KobertConfig

    def __init__(self, config: KobertConfig, labels: Sequence[str] = ()):
        super().__init__(config, labels)
        self.tokenizer: PreTrainedTokenizerFast | None = None
        self.network = None  # the trained torch module
        self.graph: bytes = b""  # its exported ONNX graph, and the runner prediction uses
        self.runner = None

    # --- checkpoint ------------------------------------------------------------------------------
    def _load_checkpoint(self, num_labels: int, seed: int, inputs: FitInputs):
        """(tokenizer, classifier) from the configured checkpoint, or from the local offline build."""
        c = self.config
        try:
            source = Path(c.checkpoint) if Path(c.checkpoint).is_dir() else _hub_snapshot(c.checkpoint)
            tokenizer = kobert_tokenizer(source / SPIECE, c.max_length)
            self.info["checkpoint"] = c.checkpoint
        except (OSError, ValueError, UserError) as err:
            if not c.offline_fallback:
                raise UserError(f"cannot load checkpoint {c.checkpoint} ({type(err).__name__}); set checkpoint to "
                                "a local directory or enable offline_fallback") from None
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"checkpoint {c.checkpoint} not available ({reason}); "
                  "building a KoBERT-style model locally", file=sys.stderr, flush=True)
            source = self._local_pretrained(inputs, seed)
            tokenizer = AutoTokenizer.from_pretrained(str(source))
            hf_logging.set_verbosity_error()  # an MLM checkpoint has no classifier head yet: expected, not news
            self.info["checkpoint"] = f"local:{source.name}"
        torch.manual_seed(seed)  # the new head starts the same whether or not the build was cached
        network = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=num_labels)
        if len(tokenizer) != network.config.vocab_size:
            raise UserError(f"tokenizer has {len(tokenizer)} pieces but the checkpoint expects "
                            f"{network.config.vocab_size}: inputs would be garbage")
        return tokenizer, network

    def _local_pretrained(self, inputs: FitInputs, seed: int) -> Path:
        """Tokenizer + MLM-pretrained small BERT on the headline corpus, cached by corpus, config and seed."""
        # the tokenizer and the MLM learn from the text the classifier reads (model_text), not the raw headlines:
        # pieces for quotes and tags would be wasted vocabulary, and would teach the source's style
        c, corpus = self.config, self.texts(inputs.corpus)
        if not corpus:
            raise UserError("offline KoBERT build needs a headline corpus (FitInputs.corpus)")
        recipe = json.dumps({"format": 2, **{k: getattr(c, k) for k in (  # 2: fast tokenizer files (tokenizer.json)
            "vocab_size", "hidden_size", "layers", "heads", "max_length", "pretrain_epochs", "pretrain_lr", "mask_prob",
            "batch_size")}, "seed": seed})
        digest = hashlib.sha256((recipe + "\n".join(corpus)).encode()).hexdigest()[:12]
        target = c.pretrained_dir / f"kobert-local-{digest}"
        if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
            _log(f"using cached pretrained model {target}")
            return target
        c.pretrained_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{digest}-", dir=c.pretrained_dir))
        state = PartialState()
        try:
            start = time.perf_counter()
            tokenizer = kobert_tokenizer(train_spiece(corpus, staging, c.vocab_size), c.max_length)
            self.info["tokenizer_seconds"] = round(time.perf_counter() - start, 1)
            _log(f"tokenizer: {len(tokenizer)} pieces in {self.info['tokenizer_seconds']} s")
            start = time.perf_counter()
            network = self._pretrain(tokenizer, corpus, inputs.log, seed)  # every process of a data-parallel launch
            self.info["pretrain_seconds"] = round(time.perf_counter() - start, 1)
            if state.is_main_process:  # one process writes the cache; the others wait for it below
                network.save_pretrained(str(staging))
                tokenizer.save_pretrained(str(staging))
                with contextlib.suppress(OSError):  # another training run cached the same build first
                    staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        state.wait_for_everyone()
        return target

    def _pretrain(self, tokenizer: PreTrainedTokenizerFast, corpus: list[str], log: EpochLog | None, seed: int):
        c = self.config
        torch.manual_seed(seed)
        bert = BertConfig(vocab_size=len(tokenizer), hidden_size=c.hidden_size, num_hidden_layers=c.layers,
                          num_attention_heads=c.heads, intermediate_size=4 * c.hidden_size,
                          max_position_embeddings=max(64, c.max_length), pad_token_id=PAD, type_vocab_size=2)
        rows = [{"input_ids": ids} for ids in tokenizer(corpus, truncation=True)["input_ids"]]
        held = max(1, min(2000, len(rows) // 50))  # a fixed slice for the validation MLM loss per epoch
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(
                model=_MaskedOnlyMLM(bert), args=_args(out, c, seed, c.pretrain_epochs, c.pretrain_lr,
                                                        save_strategy="no", prediction_loss_only=True),
                train_dataset=rows[held:], eval_dataset=rows[:held], callbacks=[_Curves("pretrain", log)],
                data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=c.mask_prob))
            trainer.train()
        return trainer.model

    # --- fine-tuning -----------------------------------------------------------------------------
    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> KobertModel:
        c = self.config
        self.labels = tuple(sorted(set(labels)))
        if c.finetune_rows is not None and len(titles) > c.finetune_rows:  # bounded time (KobertConfig)
            keep = np.sort(np.random.default_rng(seed).permutation(len(titles))[:c.finetune_rows])
            titles, labels = [titles[i] for i in keep], [labels[i] for i in keep]
            sample_weight = None if sample_weight is None else [sample_weight[i] for i in keep]
        self.info["finetune_rows"] = len(titles)
        self.tokenizer, network = self._load_checkpoint(len(self.labels), seed, inputs)
        texts = self.texts(titles)
        unk = self._unk_share(texts[:1000])
        if unk > 0.5:
            raise UserError(f"{unk:.0%} of input pieces are [UNK]: the tokenizer does not match the checkpoint")
        # what each row teaches: a target distribution (one-hot for labeled rows) and a weight
        targets = np.eye(len(self.labels), dtype=np.float32)[[self.labels.index(label) for label in labels]]
        row_w = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        counts = targets.sum(axis=0)  # balanced class weights, as the TF-IDF model: crime is rare
        class_w = len(texts) / (len(self.labels) * np.maximum(counts, 1))
        held = np.random.default_rng(seed).permutation(len(texts))[:max(1, int(len(texts) * c.early_stopping_fraction))]
        fit = np.setdiff1d(np.arange(len(texts)), held)
        if inputs.soft_targets is not None and len(inputs.soft_titles):
            texts = texts + self.texts(inputs.soft_titles)
            targets = np.concatenate([targets, np.asarray(inputs.soft_targets, dtype=np.float32)])
            row_w = np.concatenate([row_w, np.ones(len(inputs.soft_titles))])
            fit = np.concatenate([fit, np.arange(len(titles), len(texts))])
        row_w = (row_w * (targets @ class_w)).astype(np.float32)
        ids = self.tokenizer(texts, truncation=True)["input_ids"]
        rows = [{"input_ids": ids[i], "labels": targets[i], "weight": row_w[i]} for i in range(len(texts))]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            trainer = _SoftTargetTrainer(
                model=network, train_dataset=[rows[i] for i in fit], eval_dataset=[rows[i] for i in held],
                args=_args(out, c, seed, c.epochs, c.learning_rate, save_strategy="epoch", save_total_limit=1,
                           save_only_model=True, load_best_model_at_end=True, metric_for_best_model="macro_f1"),
                data_collator=DataCollatorWithPadding(self.tokenizer), compute_metrics=self._macro_f1,
                callbacks=[EarlyStoppingCallback(c.patience), _Curves("finetune", inputs.log)])
            trainer.train()
        self.network = trainer.model.eval()
        self.info["finetune_seconds"] = round(time.perf_counter() - start, 1)
        self._export([texts[i] for i in held], targets[held].argmax(axis=1))
        return self

    def _export(self, texts: list[str], y: np.ndarray) -> None:
        """The ONNX graph prediction runs (pipeline.models.onnx): fp32, or with `int8` dynamically quantised when
        its macro-F1 on the early-stopping rows (training rows, never gold) is within 0.005 of fp32's."""
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sklearn.metrics import f1_score

        c, graphs, found = self.config, {}, {}
        sample = self.tokenizer(["경찰 체포", "코스피 상승 마감"], padding=True, return_tensors="pt")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            inputs = ["input_ids", "attention_mask"]
            torch.onnx.export(self.network.cpu(), (sample["input_ids"], sample["attention_mask"]), f"{tmp}/fp32.onnx",
                              dynamo=False, input_names=inputs, output_names=["logits"],
                              dynamic_axes={name: {0: "batch", 1: "pieces"} for name in inputs})
            if c.int8:
                quantize_dynamic(f"{tmp}/fp32.onnx", f"{tmp}/int8.onnx", weight_type=QuantType.QInt8)
            graphs = {name: Path(f"{tmp}/{name}.onnx").read_bytes() for name in ("fp32", "int8")[:1 + c.int8]}
        reference = self.torch_proba(texts)
        for name, graph in graphs.items():
            proba = self._runner(graph).proba(texts)
            found[name] = {"heldout_macro_f1": round(float(f1_score(y, proba.argmax(axis=1), average="macro")), 5),
                           "max_abs_diff_vs_torch": float(np.abs(proba - reference).max())}
        choice = "int8" if c.int8 and found["int8"]["heldout_macro_f1"] >= found["fp32"]["heldout_macro_f1"] - 0.005 \
            else "fp32"
        self.info["onnx"] = {"graph": choice, **found}
        self.graph = graphs[choice]
        self.runner = self._runner(self.graph)

    def _runner(self, graph: bytes) -> OnnxRunner:
        return OnnxRunner(graph, self.tokenizer.backend_tokenizer.to_str(), self.config.max_length,
                          self.config.predict_batch_size)

    def _macro_f1(self, prediction) -> dict[str, float]:
        from sklearn.metrics import f1_score

        truth, guess = prediction.label_ids.argmax(-1), prediction.predictions.argmax(-1)
        return {"macro_f1": f1_score(truth, guess, labels=range(len(self.labels)), average="macro", zero_division=0)}

    def _unk_share(self, texts: Sequence[str]) -> float:
        ids = [i for row in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] for i in row]
        return sum(i == UNK for i in ids) / max(len(ids), 1)

    # --- inference -------------------------------------------------------------------------------
    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        """What prediction answers: the exported ONNX graph (so every metric of a run is the served model's)."""
        if self.runner is None:
            raise RuntimeError("model is not fitted")
        return self.runner.proba(self.texts(titles))

    def torch_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The training-time network's probabilities for normalised texts, batched by length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        device = next(self.network.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(order), self.config.predict_batch_size):
                idx = order[start:start + self.config.predict_batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, return_tensors="pt")
                out[idx] = torch.softmax(self.network(**batch.to(device)).logits.float(), dim=-1).cpu().numpy()
        return out

    # --- persistence -----------------------------------------------------------------------------
    def _save_weights(self, model_dir: Path) -> None:
        self.network.save_pretrained(str(model_dir / "hf"))  # safetensors: to fine-tune further, or re-export
        self.tokenizer.save_pretrained(str(model_dir / "hf"))
        (model_dir / GRAPH_FILE).write_bytes(self.graph)

    def _load_weights(self, model_dir: Path) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir / "hf"))
        self.network = AutoModelForSequenceClassification.from_pretrained(str(model_dir / "hf")).eval()
        self.graph = (model_dir / GRAPH_FILE).read_bytes()
        self.runner = self._runner(self.graph)


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
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return Path(snapshot_download(repo_id, allow_patterns=files))  # the probe below cannot see through a proxy
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=5).close()
    except OSError as err:
        raise OSError(f"{endpoint.hostname} unreachable: {err}") from None
    return Path(snapshot_download(repo_id, allow_patterns=files))
