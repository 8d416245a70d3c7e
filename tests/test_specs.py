"""Component specs: the schema, the linter, and the command line built from a spec."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import COMPONENTS, spec_of

from scmib.component import build_parser, command_line
from scmib.errors import SpecError
from scmib.lint import lint
from scmib.spec import discover, load_spec


def test_every_repository_spec_passes_lint():
    assert lint(COMPONENTS) == []


def test_specs_inherit_the_task_api():
    specs = {s.id: s for s in discover(COMPONENTS)}
    method = specs["predict_modality/methods/knn_regression"]
    inputs = {a.name: a.contract for a in method.files("input")}
    assert inputs == {
        "input_train_mod1": "predict_modality/train_mod1",
        "input_train_mod2": "predict_modality/train_mod2",
        "input_test_mod1": "predict_modality/test_mod1",
    }
    assert {a.name for a in method.parameters()} == {"n_components", "n_neighbors", "seed"}
    metric = specs["predict_modality/metrics/error"]
    assert [(m.name, m.maximize) for m in metric.info.metrics] == [("rmse", False), ("mae", False)]


def _copy_component(tmp_path: Path, component: str) -> Path:
    target = tmp_path / "components" / component
    shutil.copytree(COMPONENTS / component, target)
    return target


def test_misspelt_field_is_named_with_its_file(tmp_path):
    folder = _copy_component(tmp_path, "predict_modality/methods/knn_regression")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["sumary"] = config.pop("summary")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError) as err:
        load_spec(folder)
    message = str(err.value)
    assert "config.yaml" in message and "'sumary'" in message and "misspelt" in message
    assert "'summary'" in message  # the required field that is now missing


def test_unknown_resource_label_and_contract_are_rejected(tmp_path):
    folder = _copy_component(tmp_path, "predict_modality/metrics/error")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["resources"] = ["lowcpu", "hugemem"]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match="hugemem"):
        load_spec(folder)
    config["resources"] = ["lowcpu"]
    config["arguments"] = [{"name": "output", "contract": "predict_modality/scores_typo"}]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match="scores_typo"):
        load_spec(folder)


def test_arguments_and_dataset_args_that_would_be_dropped_are_rejected(tmp_path):
    """A stray non-mapping argument, an argument declared twice (one would silently win) and a
    dataset's misspelt or ill-typed loader argument stop the spec, naming the file and the field."""
    folder = _copy_component(tmp_path, "predict_modality/methods/knn_regression")
    original = yaml.safe_load((folder / "config.yaml").read_text())
    for arguments, message in [
        ([*original["arguments"], "oops_not_a_mapping"], "expected a list of mappings"),
        (
            [*original["arguments"], {"name": "n_neighbors", "type": "integer", "default": 3}],
            r"\['n_neighbors'\] declared more than once",
        ),
    ]:
        (folder / "config.yaml").write_text(yaml.safe_dump({**original, "arguments": arguments}))
        with pytest.raises(SpecError, match=rf"config\.yaml: field 'arguments': {message}"):
            load_spec(folder)
    loader = _copy_component(tmp_path, "datasets/loaders/neurips2021_starter")
    config = yaml.safe_load((loader / "config.yaml").read_text())
    for args, message in [
        ({"modalty": "multiome"}, "args 'modalty': not an argument of this loader"),
        ({"modality": "multiom"}, "args 'modality': 'multiom' is not one of"),
    ]:
        config["info"]["datasets"][1]["args"] = args
        (loader / "config.yaml").write_text(yaml.safe_dump(config))
        with pytest.raises(
            SpecError,
            match=rf"config\.yaml.*info\.datasets\[1\] \('neurips2021_starter_multiome'\): {message}",
        ):
            load_spec(loader)


def test_lint_catches_undeclared_arguments_wrong_folder_and_duplicates(tmp_path):
    for component, (right, wrong) in {
        "predict_modality/methods/knn_regression": ('at_most("n_neighbors"', 'at_most("n_neighbours"'),
        "predict_modality/methods/lslab_fold_knn": ('run.par["n_neighbors"]', 'run.par["n_neighbours"]'),
        "predict_modality/methods/cajal_marker_mlp": ('run.read("input_test_mod1"', 'run.read("input_test"'),
    }.items():
        script = _copy_component(tmp_path, component) / "script.py"
        assert right in script.read_text()
        script.write_text(script.read_text().replace(right, wrong))
    misplaced = _copy_component(tmp_path, "predict_modality/methods/ridge_regression")
    misplaced.rename(misplaced.parent / "ridge")
    problems = "\n".join(lint(tmp_path / "components"))
    assert "run.par['n_neighbours'] but the spec declares no parameter 'n_neighbours'" in problems
    assert "run.at_most('n_neighbours') but the spec declares no parameter 'n_neighbours'" in problems
    assert "run.read('input_test')" in problems
    assert "ridge_regression" in problems and "folder should be" in problems


@pytest.mark.parametrize(
    ("component", "change", "message"),
    [
        ("predict_modality/methods/novel_lsi_mlp", "drop_gpu", "needs the 'gpu' label"),
        ("predict_modality/methods/knn_regression", "add_gpu", "needs a 'device' argument"),
    ],
)
def test_lint_pairs_the_device_argument_with_the_gpu_label(tmp_path, component, change, message):
    folder = _copy_component(tmp_path, component)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    labels = [label for label in config["resources"] if label != "gpu"]
    config["resources"] = labels if change == "drop_gpu" else [*labels, "gpu"]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    problems = lint(tmp_path / "components")
    assert len(problems) == 1 and message in problems[0] and "'resources'" in problems[0]


def test_lint_cli_exits_non_zero_on_a_broken_spec(tmp_path):
    folder = _copy_component(tmp_path, "predict_modality/metrics/error")
    (folder / "config.yaml").write_text("name: error\nkind: metric\n  bad: [indent\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", "lint", "--components", str(tmp_path / "components")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "config.yaml" in proc.stderr and "not valid YAML" in proc.stderr


def test_command_line_round_trips_through_the_parser():
    spec = spec_of("predict_modality/methods/knn_regression")
    values = {
        "input_train_mod1": "a.h5ad",
        "input_train_mod2": "b.h5ad",
        "input_test_mod1": "c.h5ad",
        "output": "d.h5ad",
        "n_neighbors": 7,
    }
    parsed = vars(build_parser(spec).parse_args(command_line(spec, values)))
    assert parsed["n_neighbors"] == 7 and parsed["n_components"] == 50
    assert parsed["output"] == "d.h5ad"
    with pytest.raises(SystemExit):
        build_parser(spec).parse_args(["--output", "d.h5ad"])  # required inputs missing
    # A value that starts with "-" (an obs column "-donor", a name with spaces) arrives as given.
    loader = spec_of("datasets/loaders/local_file")
    values = {"input": "my data.h5ad", "output_rna": "r.h5ad", "output_mod2": "m.h5ad", "dataset_id": "mine"}
    values |= {"batch_key": "-donor", "name": "a b"}
    parsed = vars(build_parser(loader).parse_args(command_line(loader, values)))
    assert {name: parsed[name] for name in values} == values


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "knn'$(touch X)'"),
        ("name", "KNN"),
        ("argument", "n neighbours"),
        ("dataset", "my-data;rm"),
        ("image", "ghcr.io/scmib/x $(id)"),
    ],
)
def test_names_that_reach_shells_and_paths_are_restricted(tmp_path, field, value):
    """Names become job ids, folders and command-line words: [a-z0-9_]+ only, checked by the schema."""
    component = (
        "datasets/loaders/neurips2021_starter"
        if field == "dataset"
        else "predict_modality/methods/knn_regression"
    )
    folder = _copy_component(tmp_path, component)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    if field == "name":
        config["name"] = value
    elif field == "argument":
        config["arguments"] = [{"name": value, "type": "integer", "default": 1}]
    elif field == "dataset":
        config["info"]["datasets"][0]["id"] = value
    else:
        config["container"]["image"] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=r"\[a-z0-9_\]\+|should match pattern"):
        load_spec(folder)
    assert any(value in problem for problem in lint(tmp_path / "components"))
