"""The one-command demo (``scripts/demo``): the story in :mod:`.story`, the local environment in
:mod:`.local`, the command line in :mod:`.cli`. The kind e2e suite plays the same story."""

from octo_devtools.demo.story import (
    BOGUS_IMAGE,
    BOGUS_IMAGE_GLOB,
    GOOD_IMAGE,
    REAL_NODE_STEPS,
    STEPS,
    StepFailed,
    StepResult,
    StepSpec,
    Story,
    StoryTarget,
    StoryTimeouts,
    all_passed,
    render_summary,
    run_story,
    steps,
)

__all__ = [
    "BOGUS_IMAGE",
    "BOGUS_IMAGE_GLOB",
    "GOOD_IMAGE",
    "REAL_NODE_STEPS",
    "STEPS",
    "StepFailed",
    "StepResult",
    "StepSpec",
    "Story",
    "StoryTarget",
    "StoryTimeouts",
    "all_passed",
    "render_summary",
    "run_story",
    "steps",
]
