"""Golden: dsl.If / dsl.Elif / dsl.Else, dsl.OneOf, and the older dsl.Condition."""

from typing import NamedTuple

from kubelab.pipelines import dsl


@dsl.component
def flip(value: int) -> str:
    return "heads" if value % 2 == 0 else "tails"


@dsl.component
def say(message: str) -> str:
    return message


@dsl.pipeline(name="golden-conditions")
def pipeline(value: int = 2, threshold: int = 5) -> NamedTuple(
    "Outputs", [("coin", str), ("message", str)]
):
    coin = flip(value=value)
    with dsl.If(coin.output == "heads"):
        heads = say(message="got heads").set_display_name("say-heads")
    with dsl.Elif(value > threshold):
        big = say(message="big tails").set_display_name("say-big-tails")
    with dsl.Else():
        small = say(message="small tails").set_display_name("say-small-tails")
    with dsl.Condition(value == 3):
        say(message="exactly three").set_display_name("say-three")
    message = say(message=dsl.OneOf(heads.output, big.output, small.output))
    outputs = NamedTuple("Outputs", [("coin", str), ("message", str)])  # noqa: UP014
    return outputs(coin=coin.output, message=message.output)


ARGUMENTS = {"value": 3, "threshold": 1}
EXPECTED_OUTPUTS = {"coin": "tails", "message": "big tails"}
# By display name: value 3 is odd (tails), above the threshold, and exactly three.
EXPECTED_TASK_STATES = {
    "flip": "SUCCEEDED",
    "say-heads": "SKIPPED",
    "say-big-tails": "SUCCEEDED",
    "say-small-tails": "SKIPPED",
    "say-three": "SUCCEEDED",
}
