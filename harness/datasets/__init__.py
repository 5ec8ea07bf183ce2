"""Datasets (paper §2): ToyMovieReview (``toy_movie_review``), ToyMoodStory (``toy_mood_story``), SST-2
(``sst``, ``sst_prompts``), other sentiment and subjectivity sets (``transfer``), the sentiment lexicon
(``lexicon``), and the prompt and token types they share (``prompts``, ``tokens``).
Imports ``runtime`` and ``measures``."""
