"""The build machinery: stage registry, cache, fetching, keys and cached execution (runner),
stage context, the doit plugin, explain and garbage collection."""
