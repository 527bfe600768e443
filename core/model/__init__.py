"""The model: building components into a :class:`FaceModel` (warp + backbone), and its complexity."""
