"""comfyui-images: build, cache and publish the ComfyUI image family for one stack.

Composition root: validate the whole stack config first (nothing is registered when it is
wrong), then declare the image family and, when configured, its GitHub side.
"""

import pulumi

from components import config
from components.github import GithubEnvironment
from components.image import ImageFamily

settings, secrets = config.load()

# The selected image targets and their parents, each a docker-build Image.
family = ImageFamily("comfyui", settings, secrets, stack=pulumi.get_stack())

# Digest-pinned refs (tag@sha256:...) of every built target, for deployments to consume: a
# target published for several platforms is its Index, whose digest lists every platform.
pulumi.export("refs", family.refs)
pulumi.export("tags", family.tags)
# Each platform's own Image (repository@sha256:...), where any target has several.
if family.platform_refs.keys() != family.refs.keys():
    pulumi.export("platformRefs", family.platform_refs)

# The stack's GitHub deployment environment with its secrets and variables; only stacks
# that set comfyui-images:github have one (dev stays offline).
if settings.github is not None:
    github = GithubEnvironment("github", settings, secrets)
    pulumi.export("github", github.summary)
