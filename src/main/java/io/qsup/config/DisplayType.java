package io.qsup.config;

/** The graphical display of a VM ({@code display: none | vnc}). */
public enum DisplayType {
    NONE,
    VNC
}
