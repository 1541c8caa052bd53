"""Music in, tokens out: corpora and folders of files read into ``Note`` lists, encoded, cached.

music21's bundled corpora and folders of .mid/.mxl/.krn/.abc files become
``Note`` lists (``files``, ``corpus``); ``tokens`` encodes them, splits train
from validation and transposes; ``cache`` keeps the token arrays on disk so a
corpus is parsed once; ``vocabulary`` and ``chords`` name the encodings;
``seeds`` holds the built-in seed phrases. The only package that parses scores.
"""
