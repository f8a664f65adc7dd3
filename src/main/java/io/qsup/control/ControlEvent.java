package io.qsup.control;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;

/** One event for control-socket subscribers: its QMP name, the VM it concerns (or null) and its data. */
public record ControlEvent(String name, String vm, ObjectNode data, Instant time) {}
