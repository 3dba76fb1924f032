"""The registry of nnunet_ext's trainers, in the spirit of timm's model registry (``register_model``,
``list_models``).

Every public trainer is one decorated class::

    @register_trainer("div_attention", "nnU-Net's trainer with Div-attention junctions", e2e_configuration="3d_fullres")
    class DivAttentionTrainer(CheckpointOriginCheck, nnUNetTrainer):
        @staticmethod
        def build_network_architecture(...): ...

The decorator records the class with its tags and generates its variants as classes of the defining module (with
that module's ``__module__`` and their own ``__qualname__``, so that nnU-Net's spawn workers can pickle them):
``<name>_Short`` always (the budget of :mod:`nnunet_ext.trainers.short_budget`), and the :class:`TrainerVariant`\\ s
it is given (e.g. the diagnosis trainers' ``_FrozenSegmentation``), each with its own ``_Short``. It also checks the
order of the class's bases (:func:`check_mixin_order`). Everything that lists trainers asks :func:`list_trainers`:
``nnunet_ext.trainers.__all__`` (what nnU-Net's lookup sees), the discovery test, the end-to-end
parameterisation (:func:`e2e_models`) and the README's trainer table (:func:`markdown_table`, printed by
``nnunet_ext_trainers --markdown``).

A renamed trainer keeps its old name as a real subclass, ``@deprecated_trainer_name(NewName) class OldName(NewName)``:
nnU-Net's results folders, the trainer name stored in checkpoints (which the predictor resolves) and our
checkpoint-origin check all use ``__class__.__name__``, so with a mere alias ``--c -tr OldName`` would look in
another folder and silently start from scratch.
"""

import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.short_budget import ShortBudget

SHORT_SUFFIX = "_Short"
DIMENSION_TAGS = {2: "2d", 3: "3d"}


@dataclass(frozen=True)
class TrainerVariant:
    """A systematic variant ``<name><suffix>`` of a registered trainer: a subclass of it with ``mixins`` placed
    first among the bases and ``attributes`` set on the class.

    :param summary: what the variant changes, appended to the parent's summary in listings.
    :param tags: tags the variant adds to its parent's (e.g. ``needs_segmentation_model``).
    :param builds_own_network: the variant builds another network than its parent (e.g. a diagnosis branch on an
        L-Net instead of nnU-Net's U-Net); most variants change the training only.
    """

    suffix: str
    summary: str
    mixins: Tuple[type, ...] = ()
    attributes: Mapping[str, object] = field(default_factory=dict)
    tags: FrozenSet[str] = frozenset()
    builds_own_network: bool = False


SHORT_BUDGET = TrainerVariant(SHORT_SUFFIX, "short budget (NNUNET_EXT_EPOCHS, NNUNET_EXT_ITERATIONS, "
                                            "NNUNET_EXT_VAL_ITERATIONS, NNUNET_EXT_SAVE_EVERY)", mixins=(ShortBudget,),
                              tags=frozenset({"short"}))


@dataclass(frozen=True)
class RegisteredTrainer:
    """What the registry knows of one trainer.

    :param family: the part of nnunet_ext it belongs to (``div_attention``, ``lnet``, ``diagnosis``, ``baseline``).
    :param variant_of: the trainer this one is a variant of (``X`` for ``X_Short``), None for a trainer written as
        a class of its own.
    :param replaced_by: for a deprecated name, the trainer that replaces it.
    :param e2e_configuration: the configuration in which the end-to-end tests train this (short) trainer as their
        model of the family (at most a few per family: each costs minutes of CPU).
    :param own_network: a variant that builds another network than its parent's.
    """

    name: str
    trainer_class: type
    family: str
    summary: str
    tags: FrozenSet[str]
    variant_of: Optional[str] = None
    replaced_by: Optional[str] = None
    e2e_configuration: Optional[str] = None
    own_network: bool = False

    @property
    def network_of(self) -> str:
        """The trainer whose network this one builds: variants (but those that build their own) and deprecated
        names build their parent's."""
        parent = self.variant_of or self.replaced_by
        return self.name if parent is None or self.own_network else _REGISTRY[parent].network_of


_REGISTRY: Dict[str, RegisteredTrainer] = {}
_VARIANTS: Dict[str, Tuple[TrainerVariant, ...]] = {}  # trainer written as a class -> the variants asked for


def check_mixin_order(trainer_class: type, base: type = nnUNetTrainer) -> None:
    """Raise ``TypeError`` when a mixin of ``trainer_class`` (a class in its MRO that is not ``base`` or one of
    ``base``'s subclasses or ancestors) comes after ``base`` in the MRO: ``base``'s own methods would then shadow
    the mixin's overrides, which would silently never run (a frozen segmentation that trains, a loss that is not
    used). Mixins go before the trainer class among the bases."""
    mro = trainer_class.__mro__
    if base not in mro:
        raise TypeError(f"{trainer_class.__name__} is not a subclass of {base.__name__}")
    late = [c for c in mro[mro.index(base) + 1:] if c is not object and c not in base.__mro__]
    if late:
        raise TypeError(
            f"In {trainer_class.__name__}, the mixin(s) {[c.__name__ for c in late]} come after {base.__name__} in "
            f"the method resolution order, so {base.__name__}'s methods shadow theirs and they never run. Put "
            f"every mixin before the trainer class among the bases: class {trainer_class.__name__}(<mixins>, "
            f"<trainer>).")


def _record(entry: RegisteredTrainer) -> None:
    known = _REGISTRY.get(entry.name)
    if known is not None and known.trainer_class.__module__ != entry.trainer_class.__module__:
        raise ValueError(f"Two trainers are named {entry.name}: in {known.trainer_class.__module__} and in "
                         f"{entry.trainer_class.__module__}. nnU-Net finds trainers by name; rename one.")
    _REGISTRY[entry.name] = entry  # a module imported again (reload) replaces its own entries


def _make_variant(parent: type, variant: TrainerVariant, docstring: str) -> type:
    """``class <parent><suffix>(*mixins, parent)`` as a class of ``parent``'s module."""
    name = parent.__name__ + variant.suffix
    namespace = {"__module__": parent.__module__, "__qualname__": name, "__doc__": docstring,
                 **dict(variant.attributes)}
    variant_class = type(name, (*variant.mixins, parent), namespace)
    setattr(sys.modules[parent.__module__], name, variant_class)
    return variant_class


def _tags(family: str, dimensions: Sequence[int], tags: Iterable[str]) -> FrozenSet[str]:
    return frozenset({family, *(DIMENSION_TAGS[d] for d in dimensions), *tags})


def _register_with_variants(trainer_class: type, family: str, summary: str, tags: FrozenSet[str],
                            variants: Sequence[TrainerVariant], short_variant: bool,
                            replaced_by: Optional[str] = None, e2e_configuration: Optional[str] = None,
                            e2e_variant: str = "") -> None:
    check_mixin_order(trainer_class)
    _record(RegisteredTrainer(trainer_class.__name__, trainer_class, family, summary, tags,
                              replaced_by=replaced_by,
                              e2e_configuration=None if short_variant else e2e_configuration))
    _VARIANTS[trainer_class.__name__] = tuple(variants)
    parents = [(trainer_class, summary, tags)]
    for variant in variants:
        variant_summary = f"{summary}; {variant.summary}"
        variant_class = _make_variant(trainer_class, variant, f"``{trainer_class.__name__}`` with "
                                                              f"{variant.summary}.")
        variant_tags = tags | variant.tags | {"variant"}
        _record(RegisteredTrainer(variant_class.__name__, variant_class, family, variant_summary, variant_tags,
                                  variant_of=trainer_class.__name__, own_network=variant.builds_own_network))
        parents.append((variant_class, variant_summary, variant_tags))
    if not short_variant:
        return
    for parent, parent_summary, parent_tags in parents:
        short = _make_variant(parent, SHORT_BUDGET, f"``{parent.__name__}`` with the short budget of "
                                                    f"``nnunet_ext.trainers.short_budget``.")
        _record(RegisteredTrainer(short.__name__, short, family, f"{parent_summary}; {SHORT_BUDGET.summary}",
                                  parent_tags | SHORT_BUDGET.tags | {"variant"}, variant_of=parent.__name__,
                                  e2e_configuration=e2e_configuration
                                  if parent.__name__ == trainer_class.__name__ + e2e_variant else None))


def register_trainer(family: str, summary: str, *, dimensions: Sequence[int] = (2, 3), tags: Iterable[str] = (),
                     variants: Sequence[TrainerVariant] = (), short_variant: bool = True,
                     e2e_configuration: Optional[str] = None, e2e_variant: str = "") -> Callable[[type], type]:
    """Class decorator: register a public trainer and generate its variants (see the module docstring).

    :param family: see :class:`RegisteredTrainer`.
    :param summary: one line for listings and the README's table.
    :param dimensions: the spatial dimensions it supports (2D and/or 3D configurations).
    :param tags: further tags (``diagnosis``, ``needs_segmentation_model``, ``short``).
    :param variants: generated variants besides ``_Short``.
    :param short_variant: generate ``<name>_Short`` (False only for a trainer that is itself a short budget).
    :param e2e_configuration: train ``<name><e2e_variant>_Short`` in this configuration as an end-to-end model of
        the family (``e2e_variant`` is the suffix of one of ``variants``, or empty for the trainer itself).
    """
    def decorate(trainer_class: type) -> type:
        _register_with_variants(trainer_class, family, summary, _tags(family, dimensions, tags), variants,
                                short_variant, e2e_configuration=e2e_configuration, e2e_variant=e2e_variant)
        return trainer_class
    return decorate


def deprecated_trainer_name(replaced_by: type) -> Callable[[type], type]:
    """Class decorator for ``class OldName(NewName)``, the old name of a renamed trainer: registered as deprecated,
    with the same variants as the new name's (``OldName_Short`` subclasses ``OldName``, so it builds the same
    network and trains the same way; likewise every other variant of the new name) and a line in the training
    log saying which name to use."""
    def decorate(old: type) -> type:
        if not issubclass(old, replaced_by) or old is replaced_by:
            raise TypeError(f"deprecated name {old.__name__} must be a subclass of {replaced_by.__name__}")
        new = get_trainer(replaced_by.__name__)
        original_initialize = old.initialize

        def initialize(self):  # OldName, or one of its variants OldName<suffix>: its new name is NewName<suffix>
            name = self.__class__.__name__
            self.print_to_log_file(deprecation_message(name, new.name + name[len(old.__name__):]),
                                   also_print_to_console=True)
            original_initialize(self)

        old.initialize = initialize
        old.deprecation_message = deprecation_message(old.__name__, new.name)
        _register_with_variants(old, new.family, f"former name of `{new.name}`", new.tags | {"deprecated"},
                                _VARIANTS[new.name], short_variant=(new.name + SHORT_SUFFIX) in _REGISTRY,
                                replaced_by=new.name)
        return old
    return decorate


def deprecation_message(old_name: str, new_name: str) -> str:
    return (f"{old_name} is the former name of {new_name}: it is kept so that models trained under it still "
            f"predict and continue (--c). Train new models with -tr {new_name}.")


def _matches(entry: RegisteredTrainer, tags: Union[None, str, Iterable[str]], exclude: Iterable[str]) -> bool:
    wanted = set() if tags is None else {tags} if isinstance(tags, str) else set(tags)
    return wanted <= entry.tags and not (set(exclude) & entry.tags)


def list_trainers(tag: Union[None, str, Iterable[str]] = None, exclude: Union[str, Iterable[str]] = ()) -> List[str]:
    """Names of the registered trainers carrying ``tag`` (a tag or several, all required) and none of ``exclude``,
    sorted. Tags: the family, ``2d``/``3d``, ``diagnosis``, ``needs_segmentation_model``, ``short``, ``variant``
    (generated), ``deprecated``."""
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    return sorted(name for name, entry in _REGISTRY.items() if _matches(entry, tag, exclude))


def get_trainer(name: str) -> RegisteredTrainer:
    """The registry entry of ``name``; a ``KeyError`` listing the registered names otherwise."""
    if name not in _REGISTRY:
        raise KeyError(f"No registered trainer {name!r}; registered: {list_trainers()}")
    return _REGISTRY[name]


def families() -> List[str]:
    return sorted({entry.family for entry in _REGISTRY.values()})


def e2e_models() -> List[Tuple[str, str]]:
    """``(short trainer name, configuration)`` of every trainer that the end-to-end tests train."""
    return sorted((entry.name, entry.e2e_configuration) for entry in _REGISTRY.values()
                  if entry.e2e_configuration is not None)


def markdown_table() -> str:
    """The README's trainer table: one row per trainer written as a class (by family, deprecated names last), with
    its generated variants."""
    rows = ["| trainer | family | what it is | 2D / 3D | generated variants |", "|---|---|---|---|---|"]
    written = list_trainers(exclude="variant")
    for name in sorted(written, key=lambda n: (_REGISTRY[n].family, "deprecated" in _REGISTRY[n].tags, n)):
        entry = _REGISTRY[name]
        variants = ", ".join(f"`{v[len(name):]}`" for v in list_trainers() if _REGISTRY[v].variant_of and
                             _root_of(v) == name)
        dimensions = ", ".join(label.upper() for label in ("2d", "3d") if label in entry.tags)
        rows.append(f"| `{name}` | {entry.family} | {entry.summary} | {dimensions} | {variants or '-'} |")
    return "\n".join(rows) + "\n"


def _root_of(name: str) -> str:
    entry = _REGISTRY[name]
    return name if entry.variant_of is None else _root_of(entry.variant_of)
