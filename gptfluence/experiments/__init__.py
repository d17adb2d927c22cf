"""The paper's experiments and the checks that go past them, as functions over gptfluence.pipeline:

    paper            main, metrics, unseen, order, cp_interval, model_size (one command each)
    influence_check  predicted vs actual change of the final loss when top examples are removed and re-trained
    mislabelled      find flipped labels by self-influence, fix them, re-train
    common           the methods compared and the shared, resumable work folder
"""
