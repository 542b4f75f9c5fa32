"""A model version ready to answer, wherever it is stored: the predictor and the bundle.

Below both serving and export: the server answers with a :class:`.predictor.Predictor`
built from :class:`.predictor.ModelParts`, which a project's registry or a bundle
(:mod:`.bundle`, the format ``export --format bundle`` writes and ``serve`` reads)
provides; the exports check their files against the same predictor.
"""
