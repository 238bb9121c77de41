"""Hub behaviour of the models: push_to_hub driven offline, card round trips, strict loading errors,
and the shipped cards' metadata (licence, datasets, base_model, validation split, examples)."""

import json
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub import hf_api as hf_api_module
from huggingface_hub.hf_api import RepoUrl
from safetensors import safe_open

import hub_models
from hub_models.hub import WeightsFileError
from hub_models.registry import CHECKPOINT_DIR

SHIPPED = hub_models.list_checkpoints()


def _dtypes(path: Path) -> set:
    with safe_open(str(path), framework="pt") as f:
        return {f.get_tensor(k).dtype for k in f.keys()} - {torch.int64}  # BatchNorm's step counters


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def hub_standin(monkeypatch):
    """Stand-in for the Hub's HTTP API: huggingface_hub's own push code runs (push_to_hub ->
    save_pretrained into a temporary folder -> upload_folder's file walk and filters -> create_commit);
    create_repo, the Hub's YAML check and create_commit, the calls that would reach the network,
    record what they get (the YAML check parses the card's metadata locally instead)."""
    calls = {"repos": [], "commits": [], "validated": []}

    def validate_yaml(self, content, **kwargs):
        calls["validated"].append(ModelCard(content).data.to_dict())  # raises on malformed metadata

    def create_repo(self, repo_id, **kwargs):
        calls["repos"].append(repo_id)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, **kwargs):
        files = {}
        for op in operations:
            source = op.path_or_fileobj
            files[op.path_in_repo] = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
        calls["commits"].append({"repo_id": repo_id, "files": files, "message": kwargs.get("commit_message")})
        return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(HfApi, "_validate_yaml", validate_yaml)
    monkeypatch.setattr(hf_api_module, "is_xet_available", lambda: False)  # the single-commit upload path
    return calls


def test_push_to_hub_uploads_the_shipped_folder_as_it_is(hub_standin):
    folder = CHECKPOINT_DIR / "rafsr-x4"
    model = hub_models.load("rafsr-x4")
    model.push_to_hub("someone/rafsr-x4")
    assert hub_standin["repos"] == ["someone/rafsr-x4"] and hub_standin["validated"][0]["license"] == "other"
    uploaded = hub_standin["commits"][0]["files"]
    shipped = _folder_bytes(folder)
    assert {"config.json", "model.safetensors", "README.md", "LICENSE.md", "training.json", "eval_results.json",
            "examples/output.png"} <= set(uploaded)
    assert uploaded == shipped  # config, fp16 weights, the full card and its sources, byte for byte
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.license == "other" and card.data.eval_results


def test_push_of_a_training_record_and_save_with_push_flag(hub_standin, tmp_path):
    """train.py --push-to-hub hands the training record in; save_pretrained(push_to_hub=True) pushes too."""
    model = hub_models.create("srcnn", **hub_models.SRCNN.test_config)
    record = {"datasets": ["utkface"], "data": "utkface (train.txt)", "steps": 3}
    model.push_to_hub("someone/tiny", model_card_kwargs={"training": record})
    files = hub_standin["commits"][0]["files"]
    card = ModelCard(files["README.md"].decode())
    assert card.data.datasets == ["utkface"] and "- **steps:** 3" in card.text
    assert json.loads(files["training.json"]) == record and json.loads(files["config.json"])["architecture"] == "srcnn"
    model.save_pretrained(tmp_path / "tiny", push_to_hub=True, repo_id="someone/tiny2")
    assert hub_standin["repos"][-1] == "someone/tiny2" and "README.md" in hub_standin["commits"][-1]["files"]


def test_load_save_load_keeps_card_results_and_int8_storage(tmp_path):
    shipped = CHECKPOINT_DIR / "crlnet-x4"
    hub_models.load("crlnet-x4").save_pretrained(tmp_path / "a")
    hub_models.load(tmp_path / "a").save_pretrained(tmp_path / "b")
    for name in ("README.md", "training.json", "eval_results.json", "LICENSE.md", "model.safetensors",
                 "examples/output.png"):
        assert (tmp_path / "b" / name).read_bytes() == (shipped / name).read_bytes(), name
    assert torch.int8 in _dtypes(tmp_path / "b" / "model.safetensors")  # shipped int8 (training.json "storage")
    card = ModelCard.load(tmp_path / "b" / "README.md")
    assert card.data.model_name == "crlnet-x4" and card.data.base_model == "facesr-hub/crlnet-psnr-x4"
    assert len(card.data.eval_results) == len(ModelCard.load(shipped / "README.md").data.eval_results) > 0


def test_load_save_keeps_fp16_storage(tmp_path):
    hub_models.load("rafsr-x4").save_pretrained(tmp_path / "a")
    assert _dtypes(tmp_path / "a" / "model.safetensors") == {torch.float16}
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (CHECKPOINT_DIR / "rafsr-x4" / "model.safetensors").read_bytes()


def test_changed_weights_get_a_card_saying_the_results_no_longer_apply(tmp_path):
    model = hub_models.load("srcnn-x4")
    assert not model.weights_changed()
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    assert model.weights_changed()
    model.save_pretrained(tmp_path / "tuned")
    card = ModelCard.load(tmp_path / "tuned" / "README.md")
    assert "changed after they were loaded" in card.text and "no longer apply" in card.text
    assert not card.data.eval_results and "this model**" not in card.text
    assert not (tmp_path / "tuned" / "eval_results.json").exists() and not list((tmp_path / "tuned").glob("examples/*"))
    assert (tmp_path / "tuned" / "training.json").is_file() and card.data.license == "other"
    assert _dtypes(tmp_path / "tuned" / "model.safetensors") == {torch.float32}  # the fp16 check was for the old weights


def test_loading_errors_are_immediate_and_name_what_is_wrong(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hub_models.SRCNN.from_pretrained(empty)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hub_models.load(empty)

    folder = tmp_path / "model"
    hub_models.create("srcnn", **hub_models.SRCNN.test_config).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_filterz": 3}))
    with pytest.raises(ValueError, match=r"\['num_filterz'\].*SRCNN does not take"):
        hub_models.load(folder)
    (folder / "config.json").write_text(json.dumps(config))

    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(WeightsFileError, match=f"{weights}.*truncated"):
        hub_models.load(folder)
    weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    with pytest.raises(WeightsFileError, match="git lfs pull"):
        hub_models.SRCNN.from_pretrained(folder)

    for missing in (str(tmp_path / "typo"), "./checkpoints/rafsr-x5", Path("no/such/folder")):
        start = time.monotonic()
        with pytest.raises(FileNotFoundError, match="does not exist"):
            hub_models.load(missing)
        with pytest.raises(FileNotFoundError, match=str(missing).lstrip("./")):
            hub_models.RAFSR.from_pretrained(missing)
        assert time.monotonic() - start < 2, "a local-looking path must not wait for the network"


def test_card_metadata_follows_the_training_record():
    model = hub_models.create("srcnn", **hub_models.SRCNN.test_config)
    mixed = {"datasets": ["celeba_wild", "utkface"], "warm start": "checkpoints/srcnn-x4"}
    card = model.generate_model_card(training=mixed, name="srcnn-mix")
    assert card.data.datasets == ["celeba_wild", "utkface"] and card.data.base_model == "facesr-hub/srcnn-x4"
    assert card.data.license == "other" and card.data.license_name == "celeba-utkface-non-commercial"
    older = model.generate_model_card(training={"data": "../shared/data/utkface (train.txt)", "warm start": "none"})
    assert older.data.datasets == ["utkface"] and older.data.base_model is None
    same = model.generate_model_card(training={"datasets": ["mine"], "warm start": "checkpoints/srcnn-x4"}, name="srcnn-x4")
    assert same.data.base_model is None and same.data.license_name == "training-data-terms"
    assert "trained on mine" in same.text
    assert model.generate_model_card().data.license == "mit"  # untrained: no data terms


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_cards_parse_and_are_the_card_code_output(name, tmp_path):
    folder = CHECKPOINT_DIR / name
    card = ModelCard.load(folder / "README.md")
    rows = json.loads((folder / "eval_results.json").read_text())
    assert card.data.model_name == name and len(card.data.eval_results) == sum(len(r["model"]) for r in rows)
    splits = {r.dataset_name: r.dataset_split for r in card.data.eval_results}
    assert splits.get("UTKFace-val", "validation") == "validation" and splits.get("CelebA-1000") == "test"
    assert card.data.license == "other" and card.data.license_link == "LICENSE.md" and (folder / "LICENSE.md").is_file()
    assert "non-commercial" in card.data.license_name and card.data.datasets
    for image in ("input", "bicubic", "output", "original"):
        assert (folder / "examples" / f"{image}.png").is_file() and f"](examples/{image}.png)" in card.text
    start = json.loads((folder / "training.json").read_text()).get("warm start", "none")
    parent = Path(start).name if start.startswith("checkpoints/") else None  # runs/ folders are not published
    assert card.data.base_model == (f"facesr-hub/{parent}" if parent not in (None, name) else None)
    # the card is what the card code renders from the records (no number typed by hand)
    model = hub_models.load(folder)
    model.save_pretrained(tmp_path / name)
    assert (tmp_path / name / "README.md").read_text() == (folder / "README.md").read_text()
