"""The pod runner behind pods.py: base image, image build, manifest, kubelet."""
