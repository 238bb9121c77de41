"""Start the facesr-hub demo: `python app.py` -> http://127.0.0.1:7860 (offline, shipped weights).

Honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT and FACESR_CHECKPOINTS; see `python app.py --help`.
The app itself lives in the `demo` package.
"""

from demo import main

if __name__ == "__main__":
    main()
