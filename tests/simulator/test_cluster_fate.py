"""A pod's fate annotations, read the way the simulated kubelet reads them."""

from __future__ import annotations

from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.fate import PodFate, fate_from_annotations


def test_no_annotations_means_the_cluster_default() -> None:
    assert fate_from_annotations(None) == PodFate()
    assert fate_from_annotations({"app": "x"}) == PodFate()


def test_exit_code_and_duration_are_read() -> None:
    result = fate_from_annotations({fate.EXIT_CODE: "3", fate.DURATION: "1.5"})

    assert (result.exit_code, result.duration_s) == (3, 1.5)
    assert result.terminated_reason == "Error"


def test_oom_wins_over_exit_code() -> None:
    result = fate_from_annotations({fate.OOM: "true", fate.EXIT_CODE: "2"})

    assert (result.final_exit_code, result.terminated_reason) == (137, "OOMKilled")


def test_image_pull_error_true_means_err_image_pull() -> None:
    assert fate_from_annotations({fate.IMAGE_PULL_ERROR: "true"}).pending_reason == "ErrImagePull"


def test_image_pull_error_can_name_another_waiting_reason() -> None:
    result = fate_from_annotations({fate.IMAGE_PULL_ERROR: "InvalidImageName"})

    assert result.pending_reason == "InvalidImageName"


def test_malformed_values_fall_back_to_defaults() -> None:
    result = fate_from_annotations(
        {fate.EXIT_CODE: "x", fate.DURATION: "-1", fate.START_DELAY: "nan", fate.OOM: "maybe"}
    )

    assert result == PodFate()


def test_every_annotation_shares_the_prefix() -> None:
    assert all(name.startswith(fate.PREFIX) for name in fate.ALL)
