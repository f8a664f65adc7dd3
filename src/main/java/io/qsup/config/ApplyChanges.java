package io.qsup.config;

/** What a reload does with a running VM whose definition changed ({@code apply-changes: manual | restart}). */
public enum ApplyChanges {
    MANUAL,
    RESTART
}
