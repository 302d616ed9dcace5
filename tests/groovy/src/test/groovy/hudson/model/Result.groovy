package hudson.model

/** Test stand-in for hudson.model.Result: a build result, ordered from best to worst. */
final class Result {
    static final Result SUCCESS = new Result('SUCCESS', 0)
    static final Result UNSTABLE = new Result('UNSTABLE', 1)
    static final Result FAILURE = new Result('FAILURE', 2)
    static final Result NOT_BUILT = new Result('NOT_BUILT', 3)
    static final Result ABORTED = new Result('ABORTED', 4)

    final String name
    final int ordinal

    private Result(String name, int ordinal) {
        this.name = name
        this.ordinal = ordinal
    }

    static Result fromString(String name) {
        return [SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED].find { it.name == name } ?: FAILURE
    }

    boolean isWorseThan(Result other) {
        return ordinal > other.ordinal
    }

    String toString() {
        return name
    }
}
