"""Kedro datasets of the project (the only framework code outside ``pipelines/``, as catalog ``type:`` entries):
:class:`~rl_distill.io.model_dir.ModelDirDataset`, :class:`~rl_distill.io.tokenizer_dataset.TokenizerDataset`,
:class:`~rl_distill.io.optional_dataset.OptionalDataset`."""
