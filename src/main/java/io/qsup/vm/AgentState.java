package io.qsup.vm;

import java.util.Locale;

/** What qsupd knows of a VM's guest agent ({@code qemu-ga}). */
public enum AgentState {
    /** No agent channel, or the agent never answered since QEMU started. */
    ABSENT,
    /** The agent answers {@code guest-ping}. */
    CONNECTED,
    /** The agent answered before and now misses its {@code guest-ping} deadlines. */
    UNRESPONSIVE;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return label();
    }
}
