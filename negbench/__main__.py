from negbench.cli import app

app()
