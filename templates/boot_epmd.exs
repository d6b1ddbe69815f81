# mix-remote's port mapper: functions of `:mix_remote_boot` beside `main/1` (`cargo xtask
# boot-beam` puts them there), named by `-epmd_module mix_remote_boot` in templates/boot.sh.
# Distribution asks it where the tool's node is: at the reverse forward's port on the server's
# loopback, which the start line reads from stdin (`:mix_remote_port`, see
# templates/boot_start.erl) once the node runs. The launcher need not wait for the port before it starts the node: the
# tool learns it only as the session opens, a round trip before the node could have it. No EPMD
# is asked or started; the node registers nowhere (it listens nowhere).

# Distribution's supervisor starts nothing for it.
def start_link, do: :ignore

# Where a node is: always the tool's, as the one node this node ever connects to.
def address_please(_name, _host, _family) do
  {:ok, {127, 0, 0, 1}, :persistent_term.get(:mix_remote_port), 5}
end

def port_please(name, host), do: port_please(name, host, :infinity)
def port_please(_name, _host, _timeout), do: {:port, :persistent_term.get(:mix_remote_port), 5}

def names(_host), do: {:error, :address}
