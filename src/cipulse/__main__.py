from cipulse.cli import app

app()
