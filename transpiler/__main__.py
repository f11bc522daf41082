from transpiler.cli import run

run()
