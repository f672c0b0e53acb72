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

# The shipped models (docs/models.md), both on --data photos (photographs from Debian packages:
# make photo-data, as root). SR: one run, then stages that train a network of its own for the
# first noise level beside it (--first-level; SR_FIRST_STAGES,
# steps:lr[:crop:batch[:augment[:layers]]] each; layers deepens it, --first-layers).
# Inpainting: one run, then stages that go on from the last at a lower learning rate
# (INPAINT_STAGES). $(1) is the noise (gp, or white for the twins docs/models.md compares them
# with); runs land in $(RUNS)/sr-$(1), $(RUNS)/sr-$(1)-first-<stage>, $(RUNS)/inpaint-$(1) and
# $(RUNS)/inpaint-$(1)-<stage>; a killed run goes on where it stopped.
SR_STEPS ?= 6000
SR_FIRST_STAGES ?= 3000:2e-4 3000:1e-4 2000:1e-4:128:8 6000:1e-4:128:8 5000:1e-4:192:4 \
	5000:1e-4:192:4:dihedral
INPAINT_STEPS ?= 2000
INPAINT_STAGES ?= 3000:2e-4 3000:1e-4 3000:5e-5
RUNS ?= runs
FINETUNE = WDIFF_PHOTO_ROOT=$(PHOTO_ROOT) $(BIN)/wdiff finetune --data photos
RESUME = $$(test -f $(1)/checkpoint/state.json && echo --resume)
# stages after run $(2) (task $(1), noise $(3)): $(4) steps:lr[:crop:batch[:augment[:layers]]],
# $(5) what each starts from (the shell's $$previous: the run before it), landing in
# $(2)-$(6)<stage>
define train_stages
	previous=$(2); stage=1; \
	for spec in $(4); do \
		set -- $$(echo $$spec | tr : ' '); \
		out=$(2)-$(6)$$stage; \
		$(FINETUNE) --task $(1) --noise $(3) $(5) --train-steps $$1 --lr $$2 \
			$${3:+--crop $$3} $${4:+--batch-size $$4} $${5:+--augment $$5} \
			$${6:+--first-layers $$6} \
			--out $$out $(call RESUME,$$out) || exit 1; \
		previous=$$out; stage=$$((stage + 1)); \
	done
endef
define train_models
	$(FINETUNE) --task sr --noise $(1) --train-steps $(SR_STEPS) \
		--out $(RUNS)/sr-$(1) $(call RESUME,$(RUNS)/sr-$(1))
	$(call train_stages,sr,$(RUNS)/sr-$(1),$(1),$(SR_FIRST_STAGES),--init $(RUNS)/sr-$(1) --first-level $$previous,first-)
	$(FINETUNE) --task inpaint --noise $(1) --train-steps $(INPAINT_STEPS) \
		--out $(RUNS)/inpaint-$(1) $(call RESUME,$(RUNS)/inpaint-$(1))
	$(call train_stages,inpaint,$(RUNS)/inpaint-$(1),$(1),$(INPAINT_STAGES),--init $$previous,)
endef

train-builtin: setup photo-data
	$(call train_models,gp)
	mkdir -p wdiff/models/weights
	cp $(RUNS)/sr-gp-first-$(words $(SR_FIRST_STAGES))/model.safetensors \
		wdiff/models/weights/sr.safetensors
	cp $(RUNS)/inpaint-gp-$(words $(INPAINT_STAGES))/model.safetensors \
		wdiff/models/weights/inpaint.safetensors

train-white: setup photo-data
	$(call train_models,white)

# --data photos (docs/models.md): photographs from Debian packages. The wallpapers and OpenCV's
# samples install as root; kphotoalbum (a desktop application) is only unpacked, into
# PHOTO_ROOT, which wdiff reads as $WDIFF_PHOTO_ROOT.
PHOTO_PACKAGES = plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
	lxqt-themes mate-backgrounds palapeli-data opencv-doc gcompris-qt-data
PHOTO_ROOT ?= $(HOME)/.cache/wdiff/photo-packages

photo-data:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PHOTO_PACKAGES)
	mkdir -p $(PHOTO_ROOT)
	test -f $(PHOTO_ROOT)/usr/share/kphotoalbum/demo/wayne.jpg || ( cd $(PHOTO_ROOT) && \
		apt-get download kphotoalbum && dpkg-deb -x kphotoalbum_*.deb . && rm kphotoalbum_*.deb )

# train-builtin's runs without copying them into the package (compare them first with
# benchmarks/models_table.py).
train-photos: setup photo-data
	$(call train_models,gp)

lint: setup
	$(BIN)/ruff check wdiff tests benchmarks scripts
	$(BIN)/ruff format --check wdiff tests benchmarks scripts

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache
