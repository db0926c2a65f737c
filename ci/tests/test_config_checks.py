"""The shared config-validation rules that the model packages' config loaders use."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from walkout_ci.config_checks import build_section, check_range


class ExampleError(Exception):
    """Stands in for a package's own ConfigError."""


@dataclass
class ExampleSection:
    epochs: int = 3
    learning_rate: float = 0.1
    amp: bool = True
    mean: tuple[float, ...] = (0.5, 0.5)

    def validate(self) -> None:
        check_range("train.epochs", self.epochs, 1, 100, error=ExampleError)


def test_builds_a_section_coercing_ints_to_floats_and_lists_to_tuples():
    section = build_section("train", ExampleSection, {"learning_rate": 1, "mean": [1, 2]}, error=ExampleError)
    assert section == ExampleSection(learning_rate=1.0, mean=(1.0, 2.0))
    assert isinstance(section.learning_rate, float)
    assert build_section("train", ExampleSection, None, error=ExampleError) == ExampleSection()


def test_a_float_written_with_an_exponent_is_a_float_though_yaml_1_1_reads_it_as_text():
    import yaml

    raw = yaml.safe_load("learning_rate: 1e-7")  # PyYAML: '1e-7', a string (YAML 1.1 wants a dot)
    assert raw == {"learning_rate": "1e-7"}
    assert build_section("train", ExampleSection, raw, error=ExampleError).learning_rate == 1e-7
    assert (
        build_section("train", ExampleSection, {"learning_rate": "-2E3"}, error=ExampleError).learning_rate
        == -2000.0
    )
    for text in ("1e", "e-7", "fast", "nan"):
        with pytest.raises(ExampleError, match=r"train\.learning_rate must be of type float"):
            build_section("train", ExampleSection, {"learning_rate": text}, error=ExampleError)


def test_an_unknown_key_suggests_the_closest_one_in_the_packages_own_error():
    with pytest.raises(
        ExampleError, match=r"unknown config key train\.'learning_rat'; did you mean 'learning_rate'"
    ):
        build_section("train", ExampleSection, {"learning_rat": 0.1}, error=ExampleError)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, r"train\.epochs must be between 1 and 100; got 0"),
        ({"epochs": True}, r"train\.epochs must be of type int; got True"),
        ({"amp": "yes"}, r"train\.amp must be true or false"),
        ({"mean": [0.5, "x"]}, r"train\.mean\[1\] must be of type float"),
        ([1, 2], r"config section 'train' must be a mapping; got list"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(values, message):
    with pytest.raises(ExampleError, match=message):
        build_section("train", ExampleSection, values, error=ExampleError)
