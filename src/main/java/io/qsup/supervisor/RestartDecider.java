package io.qsup.supervisor;

import io.qsup.config.RestartPolicy;
import io.qsup.vm.ExitCause;

/**
 * The pure restart decision: given the VM's policy and why it ended, restart or not. It knows no time; the delay is
 * {@link Backoff}'s and the limit {@link StartLimit}'s business.
 */
public final class RestartDecider {

    /** The answer and the words that explain it in the log and in the state-change cause. */
    public record Decision(boolean restart, String reason) {}

    private RestartDecider() {}

    /**
     * Decides whether a VM that ended should be started again.
     *
     * @param policy            the VM's {@code restart} policy
     * @param cause             why it ended
     * @param operatorStop      true if the operator (or a reload) asked for this stop; it always wins
     * @param hadGoodStart      true if the VM reached running at least once since the operator last started it; a
     *                          launch failure is only retried after a good start, so a definition that never worked
     *                          does not loop
     */
    public static Decision decide(RestartPolicy policy, ExitCause cause, boolean operatorStop, boolean hadGoodStart) {
        if (operatorStop || cause.kind() == ExitCause.Kind.OPERATOR_STOP) {
            return new Decision(false, "stopped by operator");
        }
        if (cause.kind() == ExitCause.Kind.FENCED) {
            return new Decision(false, "fenced: the cluster's leader places it again once this host's lease is gone");
        }
        if (policy == RestartPolicy.NO) {
            return new Decision(false, "restart: no");
        }
        if (cause.kind() == ExitCause.Kind.LAUNCH_FAILED && !hadGoodStart) {
            return new Decision(false, "launch failed and the VM never started successfully");
        }
        if (policy == RestartPolicy.ALWAYS) {
            return new Decision(true, "restart: always after " + cause.kind().label());
        }
        if (cause.isFailure()) {
            return new Decision(true, "restart: on-failure after " + cause.kind().label());
        }
        return new Decision(false, "restart: on-failure, and " + cause.kind().label() + " is not a failure");
    }
}
