"""Protocol sources: one folder per protocol, one small contract for all.

    base.py     the `Source` contract (`run(emit)`, never returns on its own) and the
                events a source emits: `Connected`, `Readings`, `Disconnected`
    modbus/     Modbus TCP, RTU over TCP, RTU/ASCII on a serial line, polled: addresses,
                config, plan, decode, line (one connection owner per line), transport, source
    opcua/      OPC UA, subscribed (or polled): config, plan, decode, security, session,
                subscribe, audit, source

A protocol's quirks live in its folder and nowhere else: what its config allows, how its
requests are planned, how raw values become tag values, how its connection is owned. The
rest of the agent sees a `Source` and the per-protocol config classes that `agent.config`
composes.
"""
