"""ktrans_runtime: the machinery of generated training scripts, one copy per bundle.

`ktrans codegen --target train` writes `train_<Model>.py` (the model's settings, how its
data maps to the training step, the loop) and copies this package beside it. The
package needs Python 3.10+ and numpy; an engine imports its own framework when it opens
(onnxruntime for `ort_engine`). It never imports ktrans. Modules, one job each:

    cli         the flags, and how a run ends (exit codes, Ctrl-C while starting)
    signals     Ctrl-C and SIGTERM: raise while starting, stop after the step later
    console     messages on the terminal, control characters escaped
    errors      TrainingError (one line, exit 1), WriteError
    files       atomic writes (fsync, umask), stale temporaries, paths inside --out
    data        feeds, datasets, data sources, the validation split, epoch orders
    npz_source  the .npz source: arrays by name, Keras's x_train/y_train
    prepare     a data array as its feed takes it: casts, checks, target domains
    metrics     Averages: Keras's metric state over an epoch; evaluate()
    finalize    Keras's metric result() in numpy, and the check of its expressions
    schedules   Keras's learning-rate schedules
    callbacks   EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger, ...
    checkpoint  save, and load with every member checked before it is read
    progress    the Keras-style progress bar
    history     history.json, history.csv, results.json
    loop        TrainingRun: where a run stands, what it writes, how it ends
    run_end     what a run writes once it has ended: Keras files, the report
    ort_engine  the onnxruntime engine: sessions, device, IO binding, export
    cuda        whether onnxruntime can run on CUDA here, and if not, why (one line)

and the data sources and reports (data.py registers the sources; the loop reads batches
through prefetch and ends with report and keras_export):

    sources     --data of every other kind: image folders, CSV tables, .npy folders
    feeds       the sources' description of the step's inputs
    data_errors DataError, the sources' one-line errors
    image_folder  image folders as Keras's image_dataset_from_directory reads them
    image_resize  Keras's bilinear and nearest resizing
    csv_table   CSV tables with a header row
    npy_dir     a folder of memory-mapped .npy files
    prefetch    batches read ahead on a background thread
    onnx_metadata  metadata entries added to a serialized ONNX model
    report      history.png and report.html
    keras_export  trained weights for Keras: .weights.h5, .keras, Keras-layout .npz

and the PyTorch engine (`ktrans codegen --target torch`; torch imported when it opens):

    torch_engine  TorchEngine: the generated nn.Module trained the Keras way
    torch_losses  Keras's losses, reductions, masks and regularizers in PyTorch
    torch_metrics the metric plan's per-batch statistics in PyTorch
    torch_optim   Keras's optimizers (not torch.optim's), clipping, EMA, accumulation
    torch_dist    several processes under torchrun: DDP, shares of a batch, agreement
    torch_files   the trained .onnx, state_dict and Keras files of the torch engine
    onnx_layout   Keras-layout weights back into the ONNX layout (recipes run backwards)

Submodules load when first used (`ktrans_runtime.data` imports data.py then), so a
script installs its signal handling before numpy loads.

How to add an engine
--------------------
An engine runs the model; everything else (data, metrics, callbacks, checkpoints,
progress, history) is shared. It is an object with:

    name: str                           # "onnxruntime", "torch": in results.json
    export_suffix: str                  # ".onnx": <Model>.trained.onnx is written
    shapes: dict[str, tuple]            # its state entries and their shapes
    step(batch, step, learning_rate) -> dict
        # one training step on `batch` ({feed name: array}); returns the losses
        # and metric statistics by the names the script's LOSSES and METRIC_PLAN
        # use (floats, or float32 arrays for confusion counts). The new state is
        # held until:
    commit() -> None                    # the step's new state becomes the state
    evaluate(batch) -> dict             # the same outputs in inference mode, no update
    state() -> dict[str, ndarray]       # a host copy of the whole state (checkpoints)
    load(arrays) -> None                # overwrites named parts of the state
    weights() -> dict[str, ndarray]     # the parameters and buffers (callbacks)
    export(path, weights) -> None       # the trained model, written atomically
    fingerprint() -> str                # what a checkpoint must have been made with
    describe() -> dict                  # for results.json: engine, device, ...
    keras_weights() -> dict             # optional: {"<layer>/<weight>": array} in
        # Keras layout, for an engine that holds that layout; without it the Keras
        # files are made from weights() (ONNX layout) by the bundle's recipes

A new engine lives in its own modules of this package (`torch_engine.py`, ...) and
imports its framework inside the functions that need it. Its script builds it where the
ONNX script (templates/train_script.py.j2) builds `ort_engine.OrtEngine`, and runs the
same loop (tests/runtime/test_loop.py runs a numpy engine through it):

    import ktrans_runtime as kt

    def fit(interrupt, args):
        engine = kt.torch_engine.TorchEngine(Model(), COMPILED, args)
        run = kt.loop.TrainingRun(args, engine, interrupt, COMPILED)
        train, val, test = run.open_data(FEEDS)      # FEEDS: the script's literal
        run.begin()                                  # resume, then defer signals
        while run.epoch < run.epochs and not run.stop:
            run.begin_epoch()
            order = kt.data.epoch_order(run.seed, run.epoch, train.size, True)
            with run.batches(train, order) as batches:   # read ahead on a thread
                for batch in batches:
                    lr = run.begin_step()
                    values = engine.step(batch, run.step, lr)
                    if not math.isfinite(values[LOSSES["loss"]]):
                        return run.stop_on_nan(values[LOSSES["loss"]])
                    engine.commit()
                    run.end_batch(values, kt.data.rows_in(batch))
                    if interrupt.signum:
                        return run.interrupted()
            logs = run.averages.result()             # then validation: run.evaluate
            run.end_epoch(logs)                      # history, callbacks, checkpoint
        return run.finish(test)                      # trained model, results, end hooks

    def main(interrupt, argv=None):
        args = kt.cli.parse_args(argv, MODEL, TRAIN_BLOCK, FIT, SEED, HERE)
        return fit(interrupt, args)

    if __name__ == "__main__":
        sys.exit(kt.cli.run(main))

COMPILED holds the script's literals the loop needs: {"model", "train_block", "seed",
"fit", "losses", "metric_plan", "learning_rate", "callbacks"}, and the bundle's files:
"trained" (the trained model's name) and "keras" (the path of <Model>.keras.json).

Extension points for other parts: `data.register_source` (a data format),
`callbacks.register` (a callback class), `TrainingRun.on_end` (writers and reports
called once training has ended, after the default ones of run_end.py), `cli.parser` (an
engine's own flags; `cli.add_data_flags` adds the data flags to another parser).
"""

from __future__ import annotations

import importlib
import importlib.util


def __getattr__(name: str):
    """Loads a submodule on first use (`ktrans_runtime.data`)."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
