package io.qsup.config;

/** What the supervisor does with a VM whose monitor stops answering ({@code hang-action: report | restart}). */
public enum HangAction {
    REPORT,
    RESTART
}
