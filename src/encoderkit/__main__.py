"""``python -m encoderkit ...``: the command line, for launchers that start modules
(``torchrun --nproc-per-node N -m encoderkit train CONFIG``, ``accelerate launch -m encoderkit ...``)."""

from encoderkit.cli import main

if __name__ == "__main__":
    main()
