"""How much a caller may do: sliding-window rate limits, concurrency slots (memory or Redis),
and the fallback that keeps serving when Redis is away."""
