package hudson

/** Test stand-in for hudson.AbortException, what Jenkins' `error` step throws. */
class AbortException extends IOException {
    AbortException(String message) {
        super(message)
    }
}
