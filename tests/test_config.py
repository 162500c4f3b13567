import pytest

from pipeline.cli import UserError
from pipeline.config import CONFIG_DIR, DataConfig, LabelConfig, TfidfConfig, TrainConfig, load_config


@pytest.mark.parametrize("cls, name", [(DataConfig, "data"), (LabelConfig, "labels"), (TfidfConfig, "tfidf"),
                                       (TrainConfig, "train")])
def test_repo_configs_load(cls, name):
    assert isinstance(load_config(cls, CONFIG_DIR / f"{name}.yaml"), cls)


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_overrides_defaults(tmp_path):
    cfg = load_config(TfidfConfig, write(tmp_path, "C: 2\nwords: 'off'\n"))
    assert cfg.C == 2.0 and cfg.words == 'off' and cfg.min_df == TfidfConfig().min_df


@pytest.mark.parametrize("text, message", [
    ("C: 1\nlearning_rat: 0.1\n", "learning_rat: unknown key"),
    ("min_df: two\n", "min_df: Input should be a valid integer"),
    ("C: -1\n", "C: Input should be greater than 0"),
    ("words: [1\n", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
])
def test_bad_tfidf_configs_fail_with_one_line(tmp_path, text, message):
    with pytest.raises(UserError) as err:
        load_config(TfidfConfig, write(tmp_path, text))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_seed_is_set_once_in_train_yaml(tmp_path):
    """KobertConfig's own seed is gone (#22): fit's seed, from TrainConfig, seeds pretraining too. In a
    config file it is an unknown key; a saved model's config may still carry it (tests/test_kobert.py)."""
    from pipeline.config import KobertConfig

    assert "seed" in KobertConfig.RETIRED and "seed" not in KobertConfig.model_fields
    with pytest.raises(UserError, match="seed: unknown key"):
        load_config(KobertConfig, write(tmp_path, "seed: 7\n"))
    assert load_config(TrainConfig, write(tmp_path, "seed: 7\n")).seed == 7


def test_unknown_key_inside_a_rule_fails(tmp_path):
    path = write(tmp_path, "rules:\n  - {name: r, label: crime, patterns: [x], prioirty: 2}\n")
    with pytest.raises(UserError, match="prioirty"):
        load_config(LabelConfig, path)


def test_rule_with_unknown_topic_or_bad_regex_fails(tmp_path):
    with pytest.raises(UserError, match="unknown topic"):
        load_config(LabelConfig, write(tmp_path, "rules:\n  - {name: r, label: weather, patterns: [비]}\n"))
    with pytest.raises(UserError, match="bad regex"):
        load_config(LabelConfig, write(tmp_path, "rules:\n  - {name: r, label: crime, patterns: ['(']}\n"))


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(TrainConfig, tmp_path / "nope.yaml")


def test_cross_field_checks_are_one_line_errors():
    from pipeline.config import KobertConfig

    with pytest.raises(UserError, match="char_ngram_min must not exceed char_ngram_max"):
        load_config(TfidfConfig, overrides={"char_ngram_min": 5, "char_ngram_max": 2})
    with pytest.raises(UserError, match="multiple of heads"):
        load_config(KobertConfig, overrides={"hidden_size": 100, "heads": 3})


def test_val_fraction_range_checked():
    with pytest.raises(UserError, match="val_fraction"):
        load_config(TrainConfig, overrides={"val_fraction": 0.9})
