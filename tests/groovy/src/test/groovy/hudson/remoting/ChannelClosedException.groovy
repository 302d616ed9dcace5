package hudson.remoting

/** Test stand-in for what a step fails with when its agent's channel closes (the agent went offline). */
class ChannelClosedException extends IOException {
    ChannelClosedException(String message) {
        super(message)
    }
}
