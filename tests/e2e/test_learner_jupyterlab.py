"""A learner copy in a real JupyterLab, in Chromium: the answer to a "predict, then run"
question is folded shut, and opens, rendered, when the learner clicks it.
(JupyterLab's set-up: jupyterlab.py.)"""

from __future__ import annotations

import json

import pytest

from rtlab.learner import ANSWER_SUMMARY, learner_notebook
from tests.e2e.jupyterlab import copy_notebooks, lesson_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

LESSON = "07_limits.ipynb"


def test_a_predictions_answer_is_shut_until_the_learner_opens_it(tmp_path, chromium_path, capfd):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    root = copy_notebooks(tmp_path)
    path = root / LESSON
    learner = learner_notebook(json.loads(path.read_text()))
    path.write_text(json.dumps(learner.notebook, indent=1))
    answer_cell = learner.answers[0]

    try:
        with lesson_page(root, LESSON, answer_cell + 1, chromium_path) as page:
            answer = page.locator(".jp-MarkdownCell").filter(has_text=ANSWER_SUMMARY)
            answer.scroll_into_view_if_needed()
            details = answer.locator("details")
            expect(details).to_have_count(1)  # not taken out by JupyterLab's sanitizer
            told = details.locator("code", has_text="rate_limited")  # rendered markdown
            expect(told).to_be_hidden()
            details.locator("summary").click()
            expect(told).to_be_visible()
    finally:
        capfd.readouterr()  # JupyterLab's own chatter
