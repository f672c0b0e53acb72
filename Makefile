# wdiff: two commands on a fresh machine.
#   make demo   set up, then run the main job on the bundled clip with the built-in default
#   make test   set up, then run the tests
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: setup test test-all demo lint clean train-builtin train-white photo-data train-photos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	mkdir -p $(DEMO_OUT)
	$(BIN)/wdiff info builtin:bunny
	$(BIN)/wdiff degrade builtin:bunny --scale 8 -o $(DEMO_OUT)/bunny.low-x8.mp4 --overwrite
	$(BIN)/wdiff upscale $(DEMO_OUT)/bunny.low-x8.mp4 --scale 8 --preset fast \
		-o $(DEMO_OUT)/bunny.x8.mp4 --overwrite
	$(BIN)/wdiff eval $(DEMO_OUT)/bunny.x8.mp4 --flow-from $(DEMO_OUT)/bunny.low-x8.mp4 \
		-o $(DEMO_OUT)/bunny.eval.json --plot $(DEMO_OUT)/bunny.eval.png --overwrite
	$(BIN)/wdiff flow builtin:bunny -o $(DEMO_OUT)/bunny.flows.safetensors \
		--viz $(DEMO_OUT)/bunny.flow.mp4 --overwrite
	@echo "demo outputs are in $(DEMO_OUT)/"

# The shipped models (docs/models.md): GP noise, then copied into the package. SR trains on
# --data photos (photographs from Debian packages: make photo-data, as root), both of them.
SR_STEPS ?= 6000
INPAINT_STEPS ?= 2000
RUNS ?= runs
train-builtin: setup photo-data
	for task in sr inpaint; do \
		steps=$$(test $$task = sr && echo $(SR_STEPS) || echo $(INPAINT_STEPS)); \
		data=photos; \
		resume=$$(test -f $(RUNS)/$$task-gp/checkpoint/state.json && echo --resume); \
		WDIFF_PHOTO_ROOT=$(PHOTO_ROOT) $(BIN)/wdiff finetune --task $$task --noise gp \
			--data $$data --train-steps $$steps --out $(RUNS)/$$task-gp $$resume || exit 1; \
		mkdir -p wdiff/models/weights; \
		cp $(RUNS)/$$task-gp/model.safetensors wdiff/models/weights/$$task.safetensors; \
	done

# Their white-noise twins, for the GP-versus-white comparison in docs/models.md.
train-white: setup
	for task in sr inpaint; do \
		steps=$$(test $$task = sr && echo $(SR_STEPS) || echo $(INPAINT_STEPS)); \
		resume=$$(test -f $(RUNS)/$$task-white/checkpoint/state.json && echo --resume); \
		$(BIN)/wdiff finetune --task $$task --noise white --data samples --train-steps $$steps \
			--out $(RUNS)/$$task-white $$resume || exit 1; \
	done

# --data photos (docs/models.md): photographs from Debian packages. The wallpapers and OpenCV's
# samples install as root; kphotoalbum (a desktop application) is only unpacked, into
# PHOTO_ROOT, which wdiff reads as $WDIFF_PHOTO_ROOT.
PHOTO_PACKAGES = plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
	lxqt-themes mate-backgrounds palapeli-data opencv-doc
PHOTO_ROOT ?= $(HOME)/.cache/wdiff/photo-packages
PHOTO_SR_STEPS ?= 6000
PHOTO_INPAINT_STEPS ?= 2000

photo-data:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PHOTO_PACKAGES)
	mkdir -p $(PHOTO_ROOT)
	test -f $(PHOTO_ROOT)/usr/share/kphotoalbum/demo/wayne.jpg || ( cd $(PHOTO_ROOT) && \
		apt-get download kphotoalbum && dpkg-deb -x kphotoalbum_*.deb . && rm kphotoalbum_*.deb )

# The built-in models retrained on --data photos, into $(RUNS)/<task>-gp-photos (not copied
# into the package: compare them first with benchmarks/models_table.py --data photos).
train-photos: setup photo-data
	for task in sr inpaint; do \
		steps=$$(test $$task = sr && echo $(PHOTO_SR_STEPS) || echo $(PHOTO_INPAINT_STEPS)); \
		resume=$$(test -f $(RUNS)/$$task-gp-photos/checkpoint/state.json && echo --resume); \
		WDIFF_PHOTO_ROOT=$(PHOTO_ROOT) $(BIN)/wdiff finetune --task $$task --noise gp \
			--data photos --train-steps $$steps --out $(RUNS)/$$task-gp-photos $$resume || exit 1; \
	done

lint: setup
	$(BIN)/ruff check wdiff tests benchmarks scripts
	$(BIN)/ruff format --check wdiff tests benchmarks scripts

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache
