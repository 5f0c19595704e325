"""Golden: dsl.If / dsl.Elif / dsl.Else and the older dsl.Condition."""

from kubelab.pipelines import dsl


@dsl.component
def flip(value: int) -> str:
    return "heads" if value % 2 == 0 else "tails"


@dsl.component
def say(message: str) -> str:
    return message


@dsl.pipeline(name="golden-conditions")
def pipeline(value: int = 2, threshold: int = 5) -> str:
    coin = flip(value=value)
    with dsl.If(coin.output == "heads"):
        say(message="got heads").set_display_name("say-heads")
    with dsl.Elif(value > threshold):
        say(message="big tails").set_display_name("say-big-tails")
    with dsl.Else():
        say(message="small tails").set_display_name("say-small-tails")
    with dsl.Condition(value == 3):
        say(message="exactly three").set_display_name("say-three")
    return coin.output


ARGUMENTS = {"value": 3, "threshold": 1}
EXPECTED_OUTPUTS = {"Output": "tails"}
# By display name: value 3 is odd (tails), above the threshold, and exactly three.
EXPECTED_TASK_STATES = {
    "flip": "SUCCEEDED",
    "say-heads": "SKIPPED",
    "say-big-tails": "SUCCEEDED",
    "say-small-tails": "SKIPPED",
    "say-three": "SUCCEEDED",
}
