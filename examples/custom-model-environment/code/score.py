"""Scores text reviews with the word weights in the model folder.

It needs two packages the server does not give it: Unidecode (accents folded before the words
are looked up: "crème" and "creme" are one word) and NumPy 1.26 (pinned by the environment).
"""

import json
import os
import re

import numpy as np
from unidecode import unidecode

WORD = re.compile(r"[a-z]+")


def init():
    global vocabulary, weights, bias
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.json")) as fh:
        model = json.load(fh)
    vocabulary = {word: i for i, word in enumerate(model["weights"])}
    weights = np.array(list(model["weights"].values()))
    bias = model["bias"]


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path, encoding="utf-8") as fh:
            words = WORD.findall(unidecode(fh.read()).lower())
        counts = np.zeros(len(vocabulary))
        for word in words:
            if word in vocabulary:
                counts[vocabulary[word]] += 1
        score = 1 / (1 + np.exp(-(bias + counts @ weights)))
        rows.append(f"{os.path.basename(path)} {score:.3f} numpy-{np.__version__}")
    return rows
