"""KFP sample: a v1 component.yaml loaded from text, compiled by kubelab and by kfp."""

from kubelab.pipelines import components, dsl

count_words = components.load_component_from_text(
    """
name: Count words
description: Counts the words of a text.
inputs:
- {name: Text, type: String}
- {name: Min length, type: Integer, default: '2'}
- {name: Label, type: String, optional: true}
- {name: Options, type: JsonObject, default: '{"lower": true}'}
- {name: Corpus, type: Dataset}
outputs:
- {name: Count, type: Integer}
- {name: Report, type: Markdown}
- {name: Extra, type: {GCSPath: {data_type: TSV}}}
implementation:
  container:
    image: python:3.11
    command: [sh, -c]
    args:
    - |
      echo "$0" | wc -w > "$1"
    - {inputValue: Text}
    - {outputPath: Count}
    - {concat: [--min=, {inputValue: Min length}]}
    - if:
        cond: {isPresent: Label}
        then: [--label, {inputValue: Label}]
        else: [--no-label]
    - {inputPath: Corpus}
    - {inputUri: Corpus}
    - {outputPath: Report}
    - {outputUri: Extra}
    - {executorInput: null}
    env:
      MODE: fast
"""
)


@dsl.component
def make_corpus(out: dsl.Output[dsl.Dataset]):
    with open(out.path, "w") as f:
        f.write("a b c")


@dsl.pipeline
def pipeline(text: str = "hello big world"):
    corpus = make_corpus()
    count_words(text=text, corpus=corpus.output).set_env_variable("EXTRA", "1")
    count_words(text="x", corpus=corpus.output, label="y", min_length=3)
