"""The trainer registry: every public trainer is registered, has its short variant, and everything that lists
trainers (``__all__``, the README's table, the end-to-end models) comes from it."""

import importlib
import pickle
import pkgutil
import re
from pathlib import Path

import pytest

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers import registry
from nnunet_ext.trainers.registry import (SHORT_SUFFIX, check_mixin_order, e2e_models, families, get_trainer,
                                          list_trainers, markdown_table, register_trainer)
from nnunet_ext.trainers.short_budget import ShortBudget
import nnunet_ext
import nnunet_ext.trainers

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_START, TABLE_END = "<!-- trainer table: nnunet_ext_trainers --markdown -->", "<!-- end of trainer table -->"


def all_subclasses(cls):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from all_subclasses(subclass)


def public_trainers_of_the_package() -> set:
    """Every public nnUNetTrainer subclass defined anywhere in nnunet_ext (each module imported first)."""
    for module in pkgutil.walk_packages(nnunet_ext.__path__, prefix="nnunet_ext."):
        if not module.name.startswith("nnunet_ext.trainer_lookup"):  # nnU-Net imports that folder by bare names
            importlib.import_module(module.name)
    return {c.__name__ for c in all_subclasses(nnUNetTrainer)
            if c.__module__.startswith("nnunet_ext.") and not c.__name__.startswith("_")}


def test_every_public_trainer_of_the_package_is_registered_and_exported():
    public = public_trainers_of_the_package()
    assert public - set(list_trainers()) == set(), "public trainers missing from the registry"
    assert set(nnunet_ext.trainers.__all__) == set(list_trainers())
    assert all(getattr(nnunet_ext.trainers, name) is get_trainer(name).trainer_class for name in list_trainers())


def test_every_trainer_has_its_short_variant():
    for name in list_trainers(exclude="short"):
        short = get_trainer(name + SHORT_SUFFIX)
        assert short.variant_of == name and "short" in short.tags
        assert issubclass(short.trainer_class, get_trainer(name).trainer_class)
        assert short.trainer_class.__mro__[1] is ShortBudget  # the budget mixin comes first


def test_generated_variants_are_classes_of_their_parents_module():
    generated = [name for name in list_trainers("variant")]
    assert len(generated) >= 20
    for name in generated:
        trainer_class = get_trainer(name).trainer_class
        module = importlib.import_module(trainer_class.__module__)
        assert trainer_class.__qualname__ == trainer_class.__name__ == name
        assert getattr(module, name) is trainer_class
        assert pickle.loads(pickle.dumps(trainer_class)) is trainer_class


def test_tags_select_trainers():
    diagnosis = list_trainers("diagnosis")
    assert "SiANDiagnosisTrainer" in diagnosis and "DivAttentionTrainer" not in diagnosis
    needing_a_model = list_trainers("needs_segmentation_model")
    assert needing_a_model and set(needing_a_model) <= set(diagnosis)
    assert all(re.search(r"_(Frozen|Pretrained)\w*Segmentation", n) for n in needing_a_model)
    assert list_trainers(["diagnosis", "short"], exclude="needs_segmentation_model") == sorted(
        n for n in diagnosis if n.endswith(("DiagnosisTrainer_Short", "_CoupledProbabilities_Short")))
    assert set(list_trainers("3d")) == set(list_trainers("2d")) == set(list_trainers())


def test_frozen_and_pretrained_variants_set_how_the_segmentation_starts():
    frozen = get_trainer("SiANDiagnosisTrainer_FrozenSegmentation").trainer_class
    pretrained = get_trainer("BaseMultiDiagnosisTrainer_PretrainedSegmentation").trainer_class
    joint = get_trainer("SiANDiagnosisTrainer").trainer_class
    assert frozen.start_from_segmentation_model and frozen.freeze_segmentation
    assert pretrained.start_from_segmentation_model and not pretrained.freeze_segmentation
    assert not joint.start_from_segmentation_model and not joint.freeze_segmentation
    assert get_trainer("SiANDiagnosisTrainer_FrozenSegmentation_Short").trainer_class.freeze_segmentation


def test_a_deprecated_name_is_a_real_subclass_with_its_own_name_and_variants():
    old, new = get_trainer("DualLossTrainer"), get_trainer("UNetDualLossTrainer")
    assert old.replaced_by == new.name and "deprecated" in old.tags
    assert issubclass(old.trainer_class, new.trainer_class) and old.trainer_class is not new.trainer_class
    assert old.trainer_class.__name__ == "DualLossTrainer"  # what results folders and checkpoints record
    old_short = get_trainer("DualLossTrainer_Short")
    assert issubclass(old_short.trainer_class, old.trainer_class) and "deprecated" in old_short.tags
    assert old.network_of == old_short.network_of == new.name
    assert "-tr UNetDualLossTrainer" in old.trainer_class.deprecation_message


def test_variants_and_deprecated_names_share_their_parents_network():
    assert get_trainer("SiANDiagnosisTrainer_FrozenSegmentation_Short").network_of == "SiANDiagnosisTrainer"
    assert get_trainer("LNetTrainer_4s").network_of == "LNetTrainer_4s"
    own = {"SiANDiagnosisTrainer_FrozenLNetSegmentation", "SiANDiagnosisTrainer_FrozenDivAttentionSegmentation"}
    for name in own:  # a branch on another segmentation network
        assert get_trainer(name).network_of == get_trainer(name + "_Short").network_of == name
    distinct = {get_trainer(n).network_of for n in list_trainers()}
    assert distinct == set(list_trainers(exclude=["variant", "deprecated"])) | own


def test_lnet_trainer_plateau_is_registered_with_the_plateau_switch():
    entry = get_trainer("LNetTrainer_Plateau")
    assert entry.trainer_class.dual_loss_switch == "plateau" and entry.variant_of == "LNetTrainer"
    assert entry.network_of == "LNetTrainer"
    assert get_trainer("LNetTrainer_Plateau_Short").trainer_class.dual_loss_switch == "plateau"
    assert get_trainer("LNetTrainer").trainer_class.dual_loss_switch == "fraction"


class LateMixin:
    def configure_optimizers(self):  # would never run: nnUNetTrainer's own comes first
        raise AssertionError


def test_a_mixin_after_the_trainer_class_is_refused():
    class Misordered(nnUNetTrainer, LateMixin):
        pass

    class Ordered(LateMixin, nnUNetTrainer):
        pass

    with pytest.raises(TypeError, match=r"\['LateMixin'\] come after nnUNetTrainer.*never run"):
        check_mixin_order(Misordered)
    check_mixin_order(Ordered)
    with pytest.raises(TypeError, match="after nnUNetTrainer"):
        register_trainer("baseline", "misordered")(Misordered)
    assert "Misordered" not in list_trainers()


def test_a_second_trainer_with_a_registered_name_is_refused():
    class DivAttentionTrainer(nnUNetTrainer):  # same name, another module (this test's)
        pass

    with pytest.raises(ValueError, match="Two trainers are named DivAttentionTrainer"):
        register_trainer("div_attention", "a duplicate")(DivAttentionTrainer)
    assert get_trainer("DivAttentionTrainer").trainer_class.__module__ == "nnunet_ext.trainers.div_attention_trainer"


def test_every_family_has_an_end_to_end_model():
    models = e2e_models()
    assert {get_trainer(name).family for name, _ in models} == set(families())
    for name, configuration in models:
        assert "short" in get_trainer(name).tags and configuration in ("2d", "3d_fullres")


def test_the_readme_table_is_the_registrys():
    text = README.read_text()
    match = re.search(re.escape(TABLE_START) + r"\n(.*?)" + re.escape(TABLE_END), text, re.S)
    assert match, f"README.md has no trainer table between {TABLE_START!r} and {TABLE_END!r}"
    assert match.group(1) == markdown_table(), "regenerate it with: nnunet_ext_trainers --markdown"
    for name in list_trainers(exclude="variant"):
        assert f"`{name}`" in match.group(1)


def test_unknown_tags_select_nothing_and_unknown_names_are_named():
    assert registry.list_trainers(tag="no such tag") == []
    with pytest.raises(KeyError, match="No registered trainer 'Nope'"):
        get_trainer("Nope")
