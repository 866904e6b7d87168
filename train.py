"""Train and evaluate UniTriM: `python train.py` (built-in synthetic benchmark, CPU, a few minutes) or
`accelerate launch train.py --dataset msrvtt --data_dir ... --clip_model_name_or_path openai/clip-vit-base-patch32`.

All the logic lives in `unitrim_hf.training` (also installed as the `unitrim-train` console script).
"""

from unitrim_hf.training.cli import main

if __name__ == "__main__":
    main()
